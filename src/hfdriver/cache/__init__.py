"""Response caching: the :class:`Cache` protocol, :class:`SQLiteCache`, :class:`MemoryCache`.

>>> from hfdriver.cache import MemoryCache, SQLiteCache
>>> async def main():  # doctest: +SKIP
...     async with HuggingFaceDriver(cache=SQLiteCache("answers.sqlite", ttl=86400)) as driver:
...         first = await driver.generate(request)   # asks the router, stores the answer
...         again = await driver.generate(request)   # from the file: again.cached is True
...
...     cached_local = CachedDriver(LocalDriver(), MemoryCache())  # any Driver

Only complete, successful answers are stored, keyed by the canonical request payload and the
server (never the token). Identical requests in flight at once make one upstream call.
Streams are replayed from the cache, and a stream read to its end is stored.
"""

from hfdriver.cache._codec import cache_key, decode_response, encode_response
from hfdriver.cache._file import classify as classify_cache_path
from hfdriver.cache._layer import CachedDriver, CachedStream, CacheLayer, cache_of, replay_chunks
from hfdriver.cache._memory import MemoryCache
from hfdriver.cache._protocol import Cache, CacheStats
from hfdriver.cache._sqlite import DEFAULT_CACHE_PATH, SQLiteCache, default_cache_path

__all__ = [
    "DEFAULT_CACHE_PATH",
    "Cache",
    "CacheLayer",
    "CacheStats",
    "CachedDriver",
    "CachedStream",
    "MemoryCache",
    "SQLiteCache",
    "cache_key",
    "cache_of",
    "classify_cache_path",
    "decode_response",
    "default_cache_path",
    "encode_response",
    "replay_chunks",
]
