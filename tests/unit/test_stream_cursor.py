"""The stream's per-connection cursor and frame parsing, without a socket or database."""

from __future__ import annotations

from topup.entrypoints.stream import StreamCursor, _parse, error_message


def test_in_order_commits_just_move_the_floor() -> None:
    c = StreamCursor.at(10)
    assert [s for s in (11, 12, 12, 9, 14) if c.mark(s, 0.0)] == [11, 12, 14]
    c.settle(0.0)
    assert (c.floor, c.high, c.unsettled) == (14, 14, False)
    c.reset(3)
    assert (c.floor, c.high) == (3, 3) and c.mark(4, 0.0)


def test_a_late_commit_below_the_high_mark_is_sent_once() -> None:
    c = StreamCursor.at(10, settle_s=5.0)
    assert c.mark(11, 0.0) and c.mark(13, 0.0)
    c.settle(1.0)
    assert c.unsettled and c.floor == 10
    # seq 12 was taken before 13 but committed after it: still wanted, once.
    assert c.missing([11, 12, 13]) == [12]
    assert c.mark(12, 2.0) and not c.mark(12, 2.1)
    assert c.missing([11, 12, 13]) == []
    # Once what was sent is older than the settle time, any older gap is taken as rolled back.
    c.settle(4.0)
    assert c.floor == 10 and c.unsettled
    c.settle(5.5)
    assert (c.floor, c.unsettled, c.sent) == (13, False, {})
    assert not c.mark(12, 8.0)


def test_unsettled_memory_is_bounded() -> None:
    from topup.entrypoints import stream

    c = StreamCursor.at(0, settle_s=60.0)
    for seq in range(1, stream.MAX_UNSETTLED + 500):
        c.mark(seq, 0.0)
    c.settle(1.0)
    assert len(c.sent) <= stream.MAX_UNSETTLED


def test_frames_are_parsed_or_explained() -> None:
    assert _parse('{"type": "ping"}') == ({"type": "ping"}, None)
    for frame in (None, "nope", "[1]", "x" * 70_000):
        msg, problem = _parse(frame)
        assert msg is None and problem is not None and problem["error"]["code"] == "invalid_request"
    assert error_message("not_found", "gone", request_id="r1") == {
        "type": "error",
        "request_id": "r1",
        "error": {"code": "not_found", "message": "gone", "details": None},
    }
