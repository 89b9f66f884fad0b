"""One chronological list out of `order_story`: events, callbacks, notifications, ledger, exceptions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from topup.logs import is_secret_key

_KIND_TITLES = {
    "dispatch": "Dispatched",
    "dispatch_reply": "Dispatch reply",
    "dispatch_deferred": "Dispatch deferred (channel slow, at its limit)",
    "attempt_failed": "Attempt failed",
    "attempt_abandoned": "Attempt abandoned",
    "attempt_succeeded": "Attempt succeeded",
    "order_succeeded": "Order succeeded",
    "order_failed": "Order failed",
    "exception": "Exception recorded",
    "cost_posted": "Cost posted to the supplier",
    "callback": "Callback received",
    "created": "Created",
}


@dataclass(frozen=True)
class Entry:
    at: str
    source: str  # order | attempt | callback | query | notification | ledger | exception
    title: str
    detail: str
    attempt: int | None = None
    tone: str = ""  # ok | bad | ""


def describe(detail: Any) -> str:
    """`key=value` pairs for a detail dict, secrets left out."""
    if not isinstance(detail, dict):
        return "" if detail is None else str(detail)
    parts = []
    for k, v in detail.items():
        if is_secret_key(str(k)) or v is None or v == "":
            continue
        parts.append(f"{k}={describe(v) if isinstance(v, dict) else v}")
    return ", ".join(parts)


def _tone(kind: str) -> str:
    if kind.endswith("succeeded"):
        return "ok"
    if kind.endswith(("failed", "abandoned")) or kind == "exception":
        return "bad"
    return ""


def _source(kind: str) -> str:
    if kind.startswith("query"):
        return "query"
    if kind.startswith("callback"):
        return "callback"
    if kind.startswith(("dispatch", "attempt", "deadline")):
        return "attempt"
    return "order"


def entries(story: dict[str, Any]) -> list[Entry]:
    out = [
        Entry(
            story["created_at"],
            "order",
            "Order placed",
            describe(
                {
                    "product": story["product_code"],
                    "account": story["account"],
                    "price": story["price"],
                    "group": story.get("group"),
                    "plan": " > ".join(story.get("route_plan") or []) or None,
                }
            ),
        )
    ]
    for e in story.get("timeline", []):
        kind = str(e["kind"])
        title = _KIND_TITLES.get(kind, kind.replace("_", " ").capitalize())
        out.append(
            Entry(e["at"], _source(kind), title, describe(e.get("detail")), e.get("attempt"), _tone(kind))
        )
    for cb in story.get("callbacks", []):
        out.append(
            Entry(
                cb["received_at"],
                "callback",
                f"Callback {cb['status']} from {cb['channel']}",
                describe(
                    {"ref": cb["ref"], "code": cb["code"], "message": cb["message"], "outcome": cb["outcome"]}
                ),
                None,
                "ok" if cb["status"] == "success" else "bad",
            )
        )
    for note in story.get("notifications", []):
        for a in note.get("attempts", []):
            ok = a.get("status_code") is not None and 200 <= int(a["status_code"]) < 300
            out.append(
                Entry(
                    a["at"],
                    "notification",
                    f"Notification {'delivered' if ok else 'not delivered'}",
                    describe(
                        {
                            "event": note["event_id"],
                            "url": note["url"],
                            "http": a.get("status_code"),
                            "latency_ms": a.get("latency_ms"),
                            "error": a.get("error"),
                        }
                    ),
                    None,
                    "ok" if ok else "bad",
                )
            )
    for tr in story.get("ledger", []):
        legs = ", ".join(f"{p['account']} {p['amount']:+d}" for p in tr.get("postings", []))
        out.append(Entry(tr["at"], "ledger", f"Ledger {tr['kind']} {tr['amount']} fen", legs))
    for ex in story.get("exceptions", []):
        state = f"resolved by {ex['resolved_by']}" if ex.get("resolved_at") else "open"
        out.append(
            Entry(
                ex["created_at"],
                "exception",
                f"Exception {ex['kind']} ({state})",
                describe(ex.get("detail")),
                None,
                "bad",
            )
        )
    # RFC 3339 strings of one format sort chronologically; the sort is stable for equal times.
    return sorted(out, key=lambda e: e.at or "")
