"""The chart (throughput and latency percentiles over time, one row per phase) and the printed summary."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from bench.measure import percentile


def _bins(times: list[float], start: float, width: float) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for i, t in enumerate(times):
        out.setdefault(int((t - start) // width), []).append(i)
    return out


def series(phase: dict[str, Any], width: float = 1.0) -> dict[str, Any]:
    """Per-second accepted/completed counts and intake/completion p50/p99 for one phase."""
    start = phase["_start"]
    acc_t = phase["_accepted_at"]
    intake = phase["_intake_s"]
    done_t = phase["_completed_at"]
    comp = phase["_completion_s"]
    n = 1 + int(max([*acc_t, *done_t, start]) - start) // int(width) if (acc_t or done_t) else 1
    xs = [i * width for i in range(n)]
    a_bins, d_bins = _bins(acc_t, start, width), _bins(done_t, start, width)

    def pct(values: list[float], idx: list[int] | None, p: float) -> float:
        if not idx:
            return math.nan
        v = percentile([values[i] * 1000 for i in idx], p)
        return math.nan if v is None else v

    return {
        "t": xs,
        "accepted_per_s": [len(a_bins.get(i, [])) / width for i in range(n)],
        "completed_per_s": [len(d_bins.get(i, [])) / width for i in range(n)],
        "intake_p50_ms": [pct(intake, a_bins.get(i), 50) for i in range(n)],
        "intake_p99_ms": [pct(intake, a_bins.get(i), 99) for i in range(n)],
        "completion_p50_ms": [pct(comp, d_bins.get(i), 50) for i in range(n)],
        "completion_p99_ms": [pct(comp, d_bins.get(i), 99) for i in range(n)],
    }


def chart(phases: list[dict[str, Any]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(phases), 2, figsize=(14, 4 * len(phases)), squeeze=False)
    for row, phase in zip(axes, phases, strict=True):
        s = series(phase)
        ax = row[0]
        ax.plot(s["t"], s["accepted_per_s"], label="accepted/s")
        ax.plot(s["t"], s["completed_per_s"], label="completed/s")
        ax.set_title(f"{phase['name']}: throughput")
        ax.set_xlabel("seconds since phase start")
        ax.set_ylabel("orders/s")
        ax.legend()
        ax.grid(alpha=0.3)
        ax = row[1]
        ax.plot(s["t"], s["intake_p50_ms"], label="intake p50")
        ax.plot(s["t"], s["intake_p99_ms"], label="intake p99")
        ax.plot(s["t"], s["completion_p50_ms"], label="completion p50")
        ax.plot(s["t"], s["completion_p99_ms"], label="completion p99")
        ax.set_yscale("log")
        ax.set_title(f"{phase['name']}: latency (per 1 s bin)")
        ax.set_xlabel("seconds since phase start")
        ax.set_ylabel("ms")
        ax.legend()
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _ms(s: dict[str, Any] | None) -> str:
    if not s or not s.get("n"):
        return "n/a"
    return f"p50 {s['p50_ms']} / p95 {s['p95_ms']} / p99 {s['p99_ms']} ms (n={s['n']})"


def text_summary(result: dict[str, Any]) -> str:
    lines = [f"Topup Gateway bench: {result['setup']['description']}"]
    for ph in result["phases"]:
        lines += [
            f"\n[{ph['name']}] {ph['orders']} orders, offered {ph['offered']}",
            f"  accepted   {ph['accepted']} ({ph['accepted_per_s']} orders/s), non-2xx {ph['rejected']}, "
            f"merchant retries after a dropped connection {ph.get('client_retries', 0)}",
            f"  completed  {ph['completed']} ({ph['completed_per_s']} orders/s, intake to final state)",
            f"  statuses   {ph['statuses']}",
            f"  intake     {_ms(ph['intake_latency'])}  (from the scheduled send time)",
            f"  completion {_ms(ph['completion_latency'])}",
        ]
        cpu = ph.get("cpu") or {}
        if cpu:
            lines.append(
                f"  cpu        platform {cpu['platform_ms_per_order']} ms/order "
                f"(python {cpu['platform_python_ms_per_order']}); seconds {cpu['seconds']}, "
                f"machine {cpu['machine_total_s']}, not ours {cpu['other_s']}"
            )
        if ph.get("db_transactions_per_order") is not None:
            lines.append(f"  database   {ph['db_transactions_per_order']} transactions per order")
        for cause, s in ph["failover_delay"].items():
            lines.append(f"  failover   {cause:22s} {_ms(s)}")
    b = result.get("batch") or {}
    if b.get("skipped"):
        lines.append(f"\n[batch] skipped: {b['skipped']}")
    elif b:
        lines.append(
            f"\n[batch] {b['rows']} rows placed in {b['placed_s']} s (HTTP {b['http_status']}, "
            f"status {b['status']}, valid {b['valid_rows']})"
        )
        if b.get("paid_to_final_s") is not None:
            lines.append(
                f"  paid -> every order final in {b['paid_to_final_s']} s "
                f"({b['completed_per_s']} orders/s), statuses {b['statuses']}"
            )
    pg = result.get("pgbench") or {}
    if pg.get("tps"):
        lines.append(
            f"\n[pgbench] TPC-B -s {pg['scale']} -c {pg['clients']} -j {pg['threads']} -T {pg['seconds']}: "
            f"{pg['tps']:.0f} tps; completed orders/s : pgbench tps = {result.get('pgbench_ratio')}"
        )
    elif pg:
        lines.append(f"\n[pgbench] skipped: {pg.get('skipped')}")
    lines.append("\n[memory] RSS KiB start -> end (growth)")
    for name, m in result["memory"].items():
        lines.append(f"  {name:10s} {m['start_kib']} -> {m['end_kib']} ({m['growth_kib']:+d})")
    lines.extend(rss_over_time(result["phases"]))
    v = result["verdict"]
    lines.append(f"\n[verdict] {'PASS' if v['ok'] else 'FAIL'}")
    for check, value in v["checks"].items():
        lines.append(f"  {check:28s} {value}")
    return "\n".join(lines)


def rss_over_time(phases: list[dict[str, Any]]) -> list[str]:
    """RSS at a tenth, half and the end of each long phase (memory that levels off stops after warm-up)."""
    lines: list[str] = []
    for p in phases:
        series = p.get("rss_series") or []
        if len(series) < 5:
            continue
        picks = [series[len(series) // 10], series[len(series) // 2], series[-1]]
        lines.append(f"  {p['name']}: RSS KiB at {' / '.join(f'{t:g} s' for t, _ in picks)} (after warm-up)")
        for name in picks[0][1]:
            values = [snap.get(name) for _, snap in picks]
            if None in values:
                continue
            trail = " -> ".join(str(v) for v in values)
            lines.append(f"    {name:10s} {trail} ({values[-1] - values[0]:+d} after warm-up)")
    return lines
