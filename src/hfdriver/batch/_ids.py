"""``custom_id`` sets held as sorted 64-bit digests: memory stays nearly flat in the rows."""

from __future__ import annotations

import bisect
import hashlib
import heapq
from array import array
from collections.abc import Iterable

__all__ = ["IdSet", "id_hash"]


def id_hash(custom_id: str) -> int:
    return int.from_bytes(hashlib.blake2b(custom_id.encode(), digest_size=8).digest(), "little")


_CHUNK = 65_536


class IdSet:
    """A set of ``custom_id`` values held as sorted 64-bit digests: 8 bytes a row, so checking a
    file of millions of rows for duplicates, or resuming one, keeps memory nearly flat.

    (Two different ids share a digest with odds of about n²/2⁶⁵: one in 10⁸ for a million rows.)
    """

    __slots__ = ("_repeated", "_sorted")

    def __init__(self, ids: Iterable[str] = ()) -> None:
        # Sorted in chunks and merged, so building it never holds more than one chunk as objects.
        chunks: list[array[int]] = []
        buffer: list[int] = []
        for custom_id in ids:
            buffer.append(id_hash(custom_id))
            if len(buffer) >= _CHUNK:
                buffer.sort()
                chunks.append(array("Q", buffer))
                buffer = []
        if buffer:
            buffer.sort()
            chunks.append(array("Q", buffer))
        self._sorted: array[int] = array("Q")
        self._repeated: set[int] = set()
        previous = None
        for digest in heapq.merge(*chunks):
            if digest == previous:
                self._repeated.add(digest)
            else:
                self._sorted.append(digest)
                previous = digest

    def __contains__(self, custom_id: object) -> bool:
        if not isinstance(custom_id, str):
            return False
        digest = id_hash(custom_id)
        index = bisect.bisect_left(self._sorted, digest)
        return index < len(self._sorted) and self._sorted[index] == digest

    def __len__(self) -> int:
        return len(self._sorted)

    def repeated(self) -> set[int]:
        """Digests that were given more than once (candidates for duplicate ids)."""
        return self._repeated
