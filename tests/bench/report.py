"""The report: a table on stdout and the same figures as JSON."""

from __future__ import annotations

import json
import os
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.bench.common import Context, Figure

HEADER = ("figure", "value", "target", "baseline", "ratio", "pass/short")


def machine() -> dict[str, Any]:
    with open("/proc/meminfo") as handle:
        total_kb = int(handle.readline().split()[1])
    return {
        "cpus": os.cpu_count(),
        "memory_gb": round(total_kb / 2**20, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


def _number(value: float | None, unit: str = "") -> str:
    if value is None:
        return ""
    text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}"
    return f"{text} {unit}".strip()


def row(figure: Figure) -> tuple[str, ...]:
    verdict = {True: "pass", False: "SHORT", None: "report"}[figure.ok]
    base_unit = figure.unit if figure.ratio is not None else ""
    return (
        figure.name,
        _number(figure.value, figure.unit),
        figure.target,
        _number(figure.baseline, base_unit),
        "" if figure.ratio is None else f"{figure.ratio:.2f}",
        verdict,
    )


def table(ctx: Context, started: datetime, vendor_label: str) -> str:
    rows = [HEADER, *(row(f) for f in ctx.figures)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADER))]
    info = machine()
    lines = [
        f"Alchemy bench — {vendor_label}, scale {ctx.scale.name}, "
        f"{started:%Y-%m-%d %H:%M} UTC, {info['cpus']} CPUs, {info['memory_gb']} GB RAM, "
        f"load {info['load_average_1m']}",
        "",
        "| " + " | ".join(h.ljust(w) for h, w in zip(HEADER, widths, strict=True)) + " |",
        "|" + "|".join("-" * (w + 2) for w in widths) + "|",
    ]
    for r in rows[1:]:
        lines.append("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |")
    short = [f for f in ctx.figures if f.ok is False]
    lines += ["", f"{len(ctx.figures) - len(short)} of {len(ctx.figures)} figures pass or report; "
              f"{len(short)} short."]  # fmt: skip
    return "\n".join(lines)


def write_json(ctx: Context, path: Path, started: datetime, vendor_label: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "vendor": vendor_label,
        "scale": ctx.scale.name,
        "started": started.isoformat(),
        "finished": datetime.now(UTC).isoformat(),
        "machine": machine(),
        "figures": [f.as_dict() for f in ctx.figures],
    }
    path.write_text(json.dumps(document, indent=2, default=str) + "\n", encoding="utf-8")
