"""The job codec: typed payloads <-> the JSON stored in the `jobs` table (rows written before the
payloads were typed must still decode)."""

from __future__ import annotations

import orjson
import pytest

from topup.services import jobs
from topup.services.jobs import JobKind
from topup.services.ports.jobs import StoredJob


def stored(kind: str, key: str, payload: dict[str, object]) -> StoredJob:
    return StoredJob(7, kind, key, payload, 2)


@pytest.mark.parametrize(
    ("payload", "key", "on_disk"),
    [
        (jobs.RoutePayload("ord_1"), "route:ord_1", {"order_id": "ord_1"}),
        (jobs.DeadlinePayload("ord_1-1"), "deadline:ord_1-1", {"ref": "ord_1-1"}),
        (jobs.NotifyPayload("evt_1"), "notify:evt_1", {"event_id": "evt_1"}),
        (jobs.NotifyPayload("evt_1", since=5.5), "notify:evt_1", {"event_id": "evt_1", "since": 5.5}),
        (jobs.BalanceCheckPayload("supA"), "balance:supA", {"channel": "supA"}),
        (jobs.PaymentExpirePayload("pay_1"), "payment_expire:pay_1", {"payment_id": "pay_1"}),
        (
            jobs.SandboxNotifyPayload("pay_1", "paid", 100),
            "sandbox_notify:pay_1",
            {"payment_id": "pay_1", "status": "paid", "amount": 100},
        ),
    ],
)
def test_each_kind_keeps_its_key_and_stored_json(payload: jobs.Payload, key: str, on_disk: dict) -> None:
    assert payload.key == key
    assert orjson.loads(jobs.encode(payload)) == on_disk
    job = jobs.decode(stored(payload.kind.value, key, on_disk))
    assert job.kind is payload.kind and job.payload == payload and (job.id, job.tries) == (7, 2)


def test_route_deferrals_and_rate_turns_are_stored_as_before() -> None:
    deferred = jobs.RoutePayload("ord_1").deferred("slow").deferred("slow")
    assert orjson.loads(jobs.encode(deferred)) == {"order_id": "ord_1", "deferrals": 2, "channel": "slow"}
    waiting = deferred.waiting_turn("rl", 12.5, 3)
    assert orjson.loads(jobs.encode(waiting)) == {
        "order_id": "ord_1",
        "deferrals": 2,
        "channel": "slow",
        "rate_channel": "rl",
        "rate_at": 12.5,
        "rate_slot": 3,
        "rate_waits": 1,
    }
    assert jobs.decode(stored("route", "route:ord_1", orjson.loads(jobs.encode(waiting)))).payload == waiting


def test_old_rows_decode() -> None:
    # A notify job queued before its payload named the event; unknown keys are ignored.
    old = jobs.decode(stored("notify", "notify:evt_9", {}))
    assert old.payload == jobs.NotifyPayload("evt_9")
    assert jobs.decode(
        stored("route", "route:o", {"order_id": "o", "later": 1})
    ).payload == jobs.RoutePayload("o")


def test_an_unknown_kind_or_a_payload_missing_a_field_is_refused() -> None:
    with pytest.raises(ValueError, match="no job kind"):
        jobs.decode(stored("mystery", "m:1", {}))
    with pytest.raises(ValueError, match="route"):
        jobs.decode(stored("route", "route:x", {}))


def test_every_kind_has_a_payload_type_and_a_handler_field() -> None:
    assert set(jobs.PAYLOAD_TYPES) == set(JobKind)
    assert {f for f in jobs.JobHandlers.__dataclass_fields__} == {k.value for k in JobKind}
