from __future__ import annotations

import base64
import json
import random

import pytest

from hfdriver.openai import SseDecoder, SseEvent
from tests.corpus import SKIP_REASON, sse_vectors


def decode_all(chunks: list[bytes], **kw: bool) -> list[SseEvent]:
    decoder = SseDecoder(**kw)
    events = []
    for chunk in chunks:
        events.extend(decoder.feed(chunk))
    decoder.close()  # an unterminated event is dropped, per the spec
    return events


VECTORS = sse_vectors()


@pytest.mark.skipif(not VECTORS, reason=SKIP_REASON)
@pytest.mark.parametrize("case", VECTORS, ids=[c["name"] for c in VECTORS])
def test_openai_python_vectors(case: dict[str, object]) -> None:
    chunks = [base64.b64decode(c) for c in case["chunks_b64"]]  # type: ignore[attr-defined]
    expected = case["expected_events"]
    assert isinstance(expected, list)

    def check(events: list[SseEvent], wanted: list[dict[str, object]]) -> None:
        assert len(events) == len(wanted)
        for event, want in zip(events, wanted, strict=True):
            assert event.event == want["event"]
            if "json" in want:
                assert json.loads(event.data) == want["json"]
            if "data" in want:
                assert event.data == want["data"]

    # openai-python also dispatches blocks that carry only an event name: emit_empty mode.
    check(decode_all(chunks, emit_empty=True), expected)
    # The spec (and the driver) drop blocks without data: those are the only difference.
    check(
        decode_all(chunks), [w for w in expected if not ("data" in w and w["data"] == "" and "json" not in w)]
    )


@pytest.mark.parametrize("newline", [b"\n", b"\r", b"\r\n"])
def test_every_line_ending_and_every_split(newline: bytes) -> None:
    body = b"".join(
        [b": comment", newline, b"event: a", newline, b"data: 1", newline, b"data:2", newline, newline,
         b"id: 9", newline, b"data:  lead", newline, newline]
    )  # fmt: skip
    expected = [SseEvent("1\n2", "a", None), SseEvent(" lead", None, "9")]
    assert decode_all([body]) == expected
    for cut in range(1, len(body)):
        assert decode_all([body[:cut], body[cut:]]) == expected, cut
    assert decode_all([body[i : i + 1] for i in range(len(body))]) == expected


def test_cr_at_chunk_end_with_lf_in_next_chunk_is_one_line_end() -> None:
    assert decode_all([b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n"]) == [SseEvent("a\nb")]


def test_bom_comments_fields_and_empty_data() -> None:
    assert decode_all([b"\xef\xbb", b"\xbfdata: x\n\n"]) == [SseEvent("x")]
    assert decode_all([b":\n\n: keep-alive\n\n"]) == []
    assert decode_all([b"event: ping\n\n"]) == []
    assert decode_all([b"data:\n\n"]) == [SseEvent("")]
    assert decode_all([b"data\n\n"]) == [SseEvent("")]
    assert decode_all([b"retry: 3000\ndata: x\n\n"]) == [SseEvent("x", retry=3000)]
    assert decode_all([b"retry: soon\nunknown: y\ndata: x\n\n"]) == [SseEvent("x")]
    assert decode_all([b"id: a\x00b\ndata: x\n\n"]) == [SseEvent("x")]


def test_unterminated_event_at_end_is_discarded() -> None:
    assert decode_all([b"data: complete\n\ndata: partial\n"]) == [SseEvent("complete")]


def test_utf8_split_inside_a_character_and_line_separator_inside_json() -> None:
    body = 'data: {"t":"naïve \u2028 ok"}\n\n'.encode()
    for cut in range(1, len(body)):
        (event,) = decode_all([body[:cut], body[cut:]])
        assert json.loads(event.data) == {"t": "naïve \u2028 ok"}


def test_random_splits_of_a_long_stream() -> None:
    lines = [f'data: {{"i": {i}}}\r\n\r\n' if i % 3 else f'data: {{"i": {i}}}\n\n' for i in range(500)]
    body = "".join(lines).encode()
    rng = random.Random(1234)
    for _ in range(20):
        chunks, i = [], 0
        while i < len(body):
            n = rng.randint(1, 40)
            chunks.append(body[i : i + n])
            i += n
        assert [json.loads(e.data)["i"] for e in decode_all(chunks)] == list(range(500))


def test_linear_time_for_one_huge_line_fed_byte_by_byte() -> None:
    # A quadratic decoder (re-joining the buffer on every feed) would copy ~10^11 bytes here.
    size = 400_000
    decoder = SseDecoder()
    decoder.feed(b"data: ")
    events = []
    piece = b"x" * 8
    for _ in range(size // 8):
        events.extend(decoder.feed(piece))
    events.extend(decoder.feed(b"\n\n"))
    assert len(events) == 1 and len(events[0].data) == size
