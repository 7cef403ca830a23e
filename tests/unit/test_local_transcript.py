"""The transcript rendering of base models: the guard that hides a half-written turn marker."""

from __future__ import annotations


def test_the_marker_guard_holds_back_what_could_start_the_next_turn() -> None:
    from hfdriver.local._transcript import TRANSCRIPT_STOP, MarkerGuard

    guard = MarkerGuard(TRANSCRIPT_STOP)
    pieces = [guard.feed(p, finished=False) for p in ("12", "\n", "Us")] + [guard.feed("er", finished=True)]
    assert "".join(pieces) == "12"  # cut by max_tokens in the middle of "\nUser:"
    guard = MarkerGuard(TRANSCRIPT_STOP)
    pieces = [guard.feed(p, finished=False) for p in ("one", "\n", "two")] + [guard.feed("", finished=True)]
    assert "".join(pieces) == "one\ntwo"  # a line break that turned out to be text is kept
    guard = MarkerGuard(TRANSCRIPT_STOP)
    assert guard.feed("The end.\n", finished=True) == "The end."
