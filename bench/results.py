"""The results table: each figure, its baseline, the ratio and the target.

`python -m bench.results` writes latest.md again from latest.json (after the causes in
bench/shortfalls.py change)."""

from __future__ import annotations

import json
import os
import platform
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bench.shortfalls import cause_of

RESULTS_DIR = Path(__file__).resolve().parent / "results"


@dataclass
class Row:
    figure: str
    value: float
    unit: str
    baseline: float | None
    baseline_label: str
    ratio: float | None
    target: str
    met: bool | None
    repetitions: list[float] = field(default_factory=list)
    note: str = ""


def fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "—"
    if abs(value) >= 1000:
        text = f"{value:,.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.2f}"
    return f"{text} {unit}".strip()


def markdown(rows: list[Row], context: dict) -> str:
    lines = [
        f"# Benchmark results ({context['size']})",
        "",
        f"{context['when']} · PostgreSQL {context['postgres']} · {context['cpus']} CPUs, "
        f"{context['memory_gb']} GiB RAM · Python {context['python']} · "
        f"{context['duration_s']:.0f} s in all",
        "",
        "| figure | ours | baseline | ratio | target | met |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        baseline = (
            f"{fmt(row.baseline, row.unit)} ({row.baseline_label})" if row.baseline_label else "—"
        )
        met = "—" if row.met is None else ("yes" if row.met else "**no**")
        lines.append(
            f"| {row.figure} | {fmt(row.value, row.unit)} | {baseline} | {fmt(row.ratio)} | "
            f"{row.target} | {met} |"
        )
    notes = [f"- {row.figure}: {row.note}" for row in rows if row.note]
    if notes:
        lines += ["", "Notes:", *notes]
    unmet = [f"- {row.figure}: {cause_of(row.figure)}." for row in rows if row.met is False]
    if unmet:
        lines += ["", "Targets not met, the measured cause and what would close it:", *unmet]
    lines += [
        "",
        "Each figure is the median of its repetitions, measured interleaved with its baseline "
        "in the same run (bench/README.md).",
    ]
    return "\n".join(lines) + "\n"


def machine_context(size: str, postgres_version: str, duration_s: float) -> dict:
    pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return {
        "size": size,
        "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "postgres": postgres_version,
        "cpus": os.cpu_count(),
        "memory_gb": round(pages / 2**30, 1),
        "python": platform.python_version(),
        "duration_s": duration_s,
    }


def rewrite(name: str = "latest", directory: Path = RESULTS_DIR) -> Path:
    """<name>.md written again from <name>.json: after bench/shortfalls.py changes, without
    measuring again."""
    saved = json.loads((directory / f"{name}.json").read_text())
    rows = [Row(**row) for row in saved["rows"]]
    (directory / f"{name}.md").write_text(markdown(rows, saved["context"]))
    return directory / f"{name}.md"


def write(rows: list[Row], context: dict, name: str, directory: Path = RESULTS_DIR) -> Path:
    """<name>.md and <name>.json: latest for the full size, quick for `make bench-quick` (so
    `make test` never overwrites the full figures)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{name}.md").write_text(markdown(rows, context))
    (directory / f"{name}.json").write_text(
        json.dumps({"context": context, "rows": [asdict(row) for row in rows]}, indent=2) + "\n"
    )
    return directory / f"{name}.md"


if __name__ == "__main__":
    print(f"written {rewrite()}")
