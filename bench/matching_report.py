"""The matching benchmark's tables and its one-line JSON summary."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

from bench.matching_quality import Quality, recall_by_field
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from bench.matching import Config, ImportRun, PgBench, Population
    from bench.matching_lookups import Latency, LookupRun

P95_TARGET_MS = {"sqlite": 10.0, "postgres": 5.0}
IMPORT_TARGET_ROWS_S = {"postgres": 5000.0}
TARGET_PRECISION, TARGET_RECALL, TARGET_KEY_RECALL = 0.995, 0.98, 0.99
TARGET_CANDIDATES = 20.0  # mean candidates per lookup, at a million contacts


def verdict(ok: bool) -> str:
    return "[green]met[/]" if ok else "[red]missed[/]"


def triple(lat: Latency) -> str:
    return f"{lat.ms(50):.2f} / {lat.ms(95):.2f} / {lat.ms(99):.2f}"


def _cpu_split(imp: ImportRun) -> str:
    """Python and database CPU per row, and the rows/s that much CPU allows on this
    machine's cores if every core were busy all the time."""
    python_us, db_us = imp.cpu_us_per_row()
    total = python_us + (db_us or 0.0)
    cores = os.cpu_count() or 1
    bound = f" (all {cores} cores busy: <= {cores * 1e6 / total:,.0f} rows/s)" if total else ""
    return f"{python_us:,.0f} / {'n/a' if db_us is None else f'{db_us:,.0f}'}{bound}"


def _lookup_rows(cfg: Config, run: LookupRun) -> list[tuple[str, str, str, str]]:
    p95, target = run.latency.ms(95), P95_TARGET_MS[cfg.db]
    mean = sum(run.examined) / max(len(run.examined), 1)
    at_scale = cfg.n >= 1_000_000
    cand_target = f"<= {TARGET_CANDIDATES:.0f} at 1M" + (
        f" {verdict(mean <= TARGET_CANDIDATES)}" if at_scale else ""
    )
    return [
        ("lookup", "lookups/s", f"{run.latency.per_s:,.0f}", ""),
        ("lookup", "p50 / p95 / p99 ms", triple(run.latency), f"p95 <= {target} "
         f"{verdict(p95 <= target)}"),
        ("lookup", "candidates mean / max", f"{mean:.1f} / {max(run.examined)}", cand_target),
        ("lookup", "candidate limit hit", f"{run.limit_hits}", ""),
    ]  # fmt: skip


def _quality_rows(mode: str, q: Quality) -> list[tuple[str, str, str, str]]:
    section = f"quality: {mode}"
    return [
        (section, "precision", f"{q.precision:.4f}",
         f">= {TARGET_PRECISION} {verdict(q.precision >= TARGET_PRECISION)}"),
        (section, "recall (eligible)", f"{q.recall:.4f}",
         f">= {TARGET_RECALL} {verdict(q.recall >= TARGET_RECALL)}"),
        (section, "F1 (eligible)", f"{q.f1:.4f}", ""),
        (section, "recall / F1 (every copy)", f"{q.recall_all:.4f} / {q.f1_all:.4f}", ""),
        (section, "predicted / correct", f"{q.predicted} / {q.correct}", ""),
        (section, "false: someone else / other contact",
         f"{q.false_other_person} / {q.false_other_contact}", ""),
    ]  # fmt: skip


def _stream_rows(q: Quality) -> list[tuple[str, str, str, str]]:
    return [
        ("stream", "eligible / ineligible / others", f"{q.eligible} / {q.ineligible} / "
         f"{q.others}", ""),
        ("blocking", "key recall (eligible copies)", f"{q.key_recall:.4f}",
         f">= {TARGET_KEY_RECALL} {verdict(q.key_recall >= TARGET_KEY_RECALL)}"),
    ]  # fmt: skip


def _import_rows(cfg: Config, imp: ImportRun, base: Latency, p95: float) -> list[tuple[str, ...]]:
    target = IMPORT_TARGET_ROWS_S.get(cfg.db)
    met = f">= {target:,.0f} {verdict(imp.per_s >= target)}" if target else ""
    return [
        ("import", "rows", f"{imp.rows:,} in {imp.seconds:.1f} s", ""),
        ("import", "rows/s", f"{imp.per_s:,.0f}", met),
        ("import", "created/linked/flagged/rejected", "/".join(map(str, imp.summary.values())), ""),
        ("import", "CPU per row: Python / database us", _cpu_split(imp), ""),
        ("baseline", "email lookup p50 / p95 / p99 ms", triple(base), ""),
        ("baseline", "our p95 / baseline p95", f"{p95 / base.ms(95):.1f}x", ""),
    ]


def _field_table(qualities: dict[str, Quality]) -> Table:
    table = Table(title="Recall of eligible copies by damaged field")
    table.add_column("field")
    table.add_column("copies", justify="right")
    for mode in qualities:
        table.add_column(f"recall: {mode}", justify="right")
    first = next(iter(qualities.values()))
    for name, count, _ in recall_by_field(first):
        cells = [f"{q.found_by_field[name] / count:.3f}" for q in qualities.values()]
        table.add_row(name, str(count), *cells)
    return table


def report(
    console: Console, cfg: Config, where: str, pop: Population, run: LookupRun,
    qualities: dict[str, Quality], imp: ImportRun, base: Latency, pgb: PgBench | None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:  # fmt: skip
    title = (
        f"Matching benchmark: {cfg.db}, {cfg.n:,} contacts, {cfg.damage} damage, seed {cfg.seed}"
    )
    table = Table(title=title)
    for name, justify in (("section", "left"), ("measure", "left"), ("value", "right")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    table.add_column("target")
    rules = qualities["rules"]
    rows: list[tuple[str, ...]] = [
        ("setup", "database", where, ""),
        ("load", "contacts / match keys", f"{cfg.n:,} / {pop.keys:,}", ""),
        ("load", "rows/s (generate+keys+insert)", f"{cfg.n / pop.load_seconds:,.0f}", ""),
        *_lookup_rows(cfg, run),
        *_stream_rows(rules),
    ]
    for mode, q in qualities.items():
        rows += _quality_rows(mode, q)
    rows += _import_rows(cfg, imp, base, run.latency.ms(95))
    if pgb is not None and pgb.tps and pgb.latency_ms:
        rows.append(("baseline", f"pgbench {pgb.note}", f"{pgb.tps:,.0f} tps", ""))
    for key, value in (extra or {}).items():
        rows.append(("extra", key, str(value), ""))
    for row in rows:
        table.add_row(*row)
    console.print(table)
    console.print(_field_table(qualities))
    for mode, q in qualities.items():
        for example in q.examples:
            console.print(f"{mode}: {example}", markup=False, highlight=False)
    summary = _summary(cfg, pop, run, qualities, imp, base, pgb) | (extra or {})
    print(json.dumps(summary))
    return summary


def _summary(
    cfg: Config, pop: Population, run: LookupRun, qualities: dict[str, Quality],
    imp: ImportRun, base: Latency, pgb: PgBench | None,
) -> dict[str, Any]:  # fmt: skip
    py_us, db_us = imp.cpu_us_per_row()
    return {
        "db": cfg.db, "n": cfg.n, "damage": cfg.damage, "queries": cfg.queries,
        "seed": cfg.seed, "match_keys": pop.keys,
        "lookups_s": round(run.latency.per_s),
        "p50_ms": round(run.latency.ms(50), 3), "p95_ms": round(run.latency.ms(95), 3),
        "p99_ms": round(run.latency.ms(99), 3),
        "candidates_mean": round(sum(run.examined) / max(len(run.examined), 1), 2),
        "candidates_max": max(run.examined), "limit_hits": run.limit_hits,
        "key_recall": round(qualities["rules"].key_recall, 4),
        "modes": {
            mode: {"precision": round(q.precision, 4), "recall": round(q.recall, 4),
                   "f1": round(q.f1, 4), "recall_all": round(q.recall_all, 4),
                   "f1_all": round(q.f1_all, 4), "predicted": q.predicted,
                   "correct": q.correct}
            for mode, q in qualities.items()
        },
        "eligible": qualities["rules"].eligible,
        "import_rows_s": round(imp.per_s), "import": imp.summary,
        "import_cpu_us_per_row": {"python": round(py_us),
                                  "database": None if db_us is None else round(db_us)},
        "baseline_p95_ms": round(base.ms(95), 3),
        "pgbench_tps": pgb.tps if pgb else None,
    }  # fmt: skip
