"""The soak's printed report: requests by operation and status, latency per minute with
creep flagged, memory at start and end, one line per fault, and the checks."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass

from bench.soak_checks import Check, failed_calls, in_window
from bench.soak_faults import Injected
from bench.soak_workload import Call

CREEP_FACTOR = 2.0


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    data = sorted(values)
    return data[min(len(data) - 1, int(p / 100 * len(data)))] * 1000


def by_operation(calls: list[Call]) -> list[str]:
    table: dict[str, Counter[str]] = defaultdict(Counter)
    for c in calls:
        table[c.op][str(c.status or c.error)] += 1
    lines = ["requests by operation and status:"]
    for op in sorted(table):
        statuses = ", ".join(f"{s}: {n}" for s, n in sorted(table[op].items()))
        lines.append(f"  {op:<28} {sum(table[op].values()):>6}  {statuses}")
    lines.append(f"  {'total':<28} {len(calls):>6}")
    return lines


@dataclass
class Minutes:
    rows: list[tuple[int, int, float, float]]  # minute, calls, p50 ms, p99 ms

    @property
    def creep(self) -> bool | None:
        """Last full minute's p99 above twice the first's; None with fewer than 3 minutes."""
        if len(self.rows) < 3:
            return None
        return self.rows[-1][3] > CREEP_FACTOR * self.rows[0][3]


def per_minute(calls: list[Call], seconds: float) -> Minutes:
    buckets: dict[int, list[float]] = defaultdict(list)
    for c in calls:
        if c.status and c.start < seconds:
            buckets[int(c.start // 60)].append(c.latency)
    full = int(seconds // 60) or 1  # a partial last minute would understate its p99
    return Minutes([(m, len(buckets[m]), pct(buckets[m], 50), pct(buckets[m], 99))
                    for m in sorted(buckets) if m < full])  # fmt: skip


def minute_lines(minutes: Minutes) -> list[str]:
    lines = ["latency per minute (answered calls):", "  minute  calls   p50 ms   p99 ms"]
    lines += [f"  {m:>6}  {n:>5}  {p50:>7.0f}  {p99:>7.0f}" for m, n, p50, p99 in minutes.rows]
    creep = minutes.creep
    verdict = ("n/a (under 3 minutes)" if creep is None else
               "CREEP: last minute p99 > 2x the first" if creep else "none (last p99 <= 2x first)")  # fmt: skip
    lines.append(f"  creep: {verdict}")
    return lines


def memory_lines(start: dict[str, int], end: dict[str, int]) -> list[str]:
    def mib(kib: int) -> str:
        return f"{kib / 1024:.0f} MiB"

    return [
        "memory (RSS from /proc):",
        f"  gunicorn master+workers: {mib(start['gunicorn_total'])} -> {mib(end['gunicorn_total'])}",
        f"  gunicorn workers ({start['workers']} -> {end['workers']}): "
        f"{mib(start['gunicorn_workers'])} -> {mib(end['gunicorn_workers'])}",
        f"  task worker: {mib(start['task_worker'])} -> {mib(end['task_worker'])}",
    ]


def fault_lines(faults: list[Injected], calls: list[Call], reconciled: dict[str, str]) -> list[str]:
    """One line per fault: what, when, the calls that failed in its window and how."""
    lines = ["faults:"]
    failed = failed_calls(calls)
    for f in faults:
        mine = [c for c in failed if in_window(c, [f]) is f]
        how = Counter(f"{c.op} {c.status or c.error}" for c in mine)
        what = ", ".join(f"{k} x{n}" for k, n in how.most_common(6)) or "none"
        lines.append(f"  t={f.start:6.1f}-{f.end:6.1f} s {f.name}: {f.detail}")
        lines.append(f"      failed in window: {len(mine)} ({what}); reconciled: "
                     f"{reconciled.get(f.name + str(f.start), 'nothing pending')}")  # fmt: skip
    return lines


def check_lines(checks: list[Check]) -> list[str]:
    lines = ["checks:"]
    lines += [f"  [{'PASS' if c.ok else 'FAIL'}] {c.name}: {c.detail}" for c in checks]
    failed = sum(not c.ok for c in checks)
    lines.append(f"  {len(checks) - failed} passed, {failed} failed")
    return lines
