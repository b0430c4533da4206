"""The results as markdown: every cell, the targets next to the numbers, the checks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from loadgen import CellResult
from seed import Check
from stack import Usage

RSS_LIMIT_MB = 150.0

SCENARIO_TITLES = {
    "books": "books list (anonymous)",
    "borrowings": "own borrowings (member)",
    "cycle": "borrow-pay-return cycle",
    "token": "token obtain (bcrypt 12)",
}


@dataclass(frozen=True, slots=True)
class Target:
    min_rps: float | None = None
    max_p99_ms: float | None = None

    def describe(self) -> str:
        parts = []
        if self.min_rps is not None:
            parts.append(f">= {self.min_rps:,.0f} req/s")
        if self.max_p99_ms is not None:
            parts.append(f"p99 <= {self.max_p99_ms:.0f} ms")
        return ", ".join(parts)

    def met(self, result: CellResult) -> bool:
        fast_enough = self.min_rps is None or result.rps >= self.min_rps
        tail_ok = self.max_p99_ms is None or result.latency.p99_ms <= self.max_p99_ms
        return fast_enough and tail_ok


TARGETS = {
    ("books", 64): Target(min_rps=1_300, max_p99_ms=70),
    ("borrowings", 64): Target(min_rps=600),
    ("cycle", 64): Target(min_rps=600),
}


@dataclass(frozen=True, slots=True)
class Row:
    result: CellResult
    usage: Usage
    pg_sessions: int  # connections opened to PostgreSQL during the cell
    delivered: int = 0  # staff messages and member notices the worker dealt with


CPU_TREES = ("API", "PostgreSQL", "sandbox", "sinks", "worker", "Redis")


def render(
    rows: Sequence[Row],
    *,
    peak_rss_mb: dict[int, float],
    checks: Sequence[Check],
    header: Sequence[str],
    notes: Sequence[str],
    profiles: Sequence[str] = (),
) -> str:
    lines = ["# Load benchmark", "", *header, ""]
    lines += _cells_table(rows)
    lines += ["", "## Targets", ""]
    lines += _targets(rows, peak_rss_mb)
    lines += ["", "## Where the CPU went (100 % = one core, 2 cores in all)", ""]
    lines += _cpu_table(rows)
    for row in rows:
        if row.result.scenario == "cycle":
            lines += ["", f"## Cycle steps, c={row.result.concurrency}", ""]
            lines += _steps_table(row.result)
    errors = [row for row in rows if row.result.error_kinds]
    if errors:
        lines += ["", "## Errors", ""]
        for row in errors:
            kinds = ", ".join(f"{kind}: {n}" for kind, n in row.result.error_kinds.items())
            lines.append(f"- {row.result.scenario} c={row.result.concurrency}: {kinds}")
    if profiles:
        lines += ["", "## Heaviest frames", "", *profiles]
    lines += ["", "## Invariants", ""]
    lines += [f"- {'PASS' if c.passed else 'FAIL'} {c.name} ({c.detail})" for c in checks]
    lines += ["", "## Notes", "", *[f"- {note}" for note in notes], ""]
    return "\n".join(lines)


def _cells_table(rows: Sequence[Row]) -> list[str]:
    lines = [
        "| scenario | c | req/s | p50 ms | p99 ms | max ms | errors | API RSS MB (per worker) "
        "| API CPU % (per worker) | connections per worker | target | verdict |",
        "|---|---:|---:|---:|---:|---:|---:|---|---|---|---|---|",
    ]
    for row in rows:
        result, usage = row.result, row.usage
        target = TARGETS.get((result.scenario, result.concurrency))
        verdict = "PASS"
        if result.errors or (target is not None and not target.met(result)):
            verdict = "**FAIL**"
        rss = " / ".join(f"{mb:.0f}" for _, mb in sorted(usage.rss_peak_mb.items()))
        cpu = " / ".join(f"{pct:.0f}" for _, pct in sorted(usage.worker_cpu_percent.items()))
        links = " / ".join(str(usage.connections.get(pid, 0)) for pid in sorted(usage.rss_peak_mb))
        goal = (target.describe() + ", " if target else "") + "0 errors"
        lines.append(
            f"| {SCENARIO_TITLES[result.scenario]} | {result.concurrency} | {result.rps:,.0f} "
            f"| {result.latency.p50_ms:.1f} | {result.latency.p99_ms:.1f} "
            f"| {result.latency.max_ms:.0f} | {result.errors} | {rss} "
            f"| {cpu} | {links} | {goal} "
            f"| {verdict} |"
        )
    return lines


def _targets(rows: Sequence[Row], peak_rss_mb: dict[int, float]) -> list[str]:
    by_cell = {(row.result.scenario, row.result.concurrency): row.result for row in rows}
    lines = []
    for (scenario, concurrency), target in TARGETS.items():
        name = f"{SCENARIO_TITLES[scenario]} c={concurrency}: {target.describe()}"
        result = by_cell.get((scenario, concurrency))
        if result is None:
            lines.append(f"- NOT RUN {name}")
            continue
        measured = f"{result.rps:,.0f} req/s, p99 {result.latency.p99_ms:.1f} ms"
        lines.append(f"- {'PASS' if target.met(result) else 'FAIL'} {name}: {measured}")
    peaks = ", ".join(f"pid {pid}: {mb:.0f} MB" for pid, mb in sorted(peak_rss_mb.items()))
    rss_ok = bool(peak_rss_mb) and max(peak_rss_mb.values()) <= RSS_LIMIT_MB
    lines.append(
        f"- {'PASS' if rss_ok else 'FAIL'} API RSS <= {RSS_LIMIT_MB:.0f} MB per worker "
        f"(peak over the whole run): {peaks}"
    )
    errors = sum(row.result.errors for row in rows)
    lines.append(f"- {'PASS' if errors == 0 else 'FAIL'} zero errors: {errors}")
    return lines


def _cpu_table(rows: Sequence[Row]) -> list[str]:
    trees = [name for name in CPU_TREES if any(name in row.usage.cpu_percent for row in rows)]
    lines = [
        "| scenario | c | "
        + " | ".join(trees)
        + " | load generator | rest of the box | whole box | API CPU ms per request "
        "| stack CPU ms per request | worker CPU ms per message | PG sessions opened |",
        "|---|---:|" + "---:|" * (len(trees) + 7),
    ]
    for row in rows:
        result, usage = row.result, row.usage
        stack = sum(usage.cpu_percent.values())
        rest = usage.box_cpu_percent - stack - result.loadgen_cpu_percent
        cells = [f"{usage.cpu_percent.get(name, 0):.0f}" for name in trees]
        cells += [
            f"{result.loadgen_cpu_percent:.0f}",
            f"{max(0.0, rest):.0f}",
            f"{usage.box_cpu_percent:.0f}",
            _per_request(usage.cpu_percent.get("API", 0.0), result.rps),
            _per_request(stack, result.rps),
            _per_request(usage.cpu_percent.get("worker", 0.0), row.delivered / usage.seconds)
            if row.delivered
            else "-",
            str(row.pg_sessions),
        ]
        lines.append(
            f"| {SCENARIO_TITLES[result.scenario]} | {result.concurrency} | "
            + " | ".join(cells)
            + " |"
        )
    return lines


def _per_request(cpu_percent: float, rps: float) -> str:
    """CPU milliseconds spent per answered request (100 % of a core for 1 s = 1,000 ms)."""
    return f"{10 * cpu_percent / rps:.2f}" if rps else "-"


def _steps_table(result: CellResult) -> list[str]:
    lines = [
        "| request | count | req/s | p50 ms | p99 ms | max ms |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for label, stats in result.steps.items():
        lines.append(
            f"| {label} | {stats.requests} | {stats.requests / result.window_seconds:,.0f} "
            f"| {stats.p50_ms:.1f} | {stats.p99_ms:.1f} | {stats.max_ms:.0f} |"
        )
    return lines
