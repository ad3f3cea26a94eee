"""Draw the documentation's chart of conversions from the figures the benchmarks saved.

Reads ``benchmarks/results/conversions-*.json`` (written by ``conversions.py
--save``) and writes ``docs/conversions.svg``: for each engine, the seconds
until a ~200 MB image is pushed, by each way, beside the engine's own
``docker save`` of it. A plain SVG, no plotting library.

Usage: .venv/bin/python benchmarks/chart.py
"""

from __future__ import annotations

import json
from html import escape
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
CHART = ROOT / "docs" / "conversions.svg"

BARS = [
    ("docker save alone", None, "#9e9e9e"),
    ("docker CLI, step by step", "one: baseline", "#616161"),
    ("crane", "one: library", "#1565c0"),
    ("native, gzip", "one: native, gzip", "#2e7d32"),
    ("native, none", "one: native, none", "#66bb6a"),
]
BAR, GAP, GROUP_GAP, LEFT, TOP, HEIGHT = 22, 4, 36, 190, 40, 260


def _value(figures: dict[str, object], key: str | None) -> float:
    if key is None:
        return float(figures["docker_save_alone"])  # type: ignore[arg-type]
    return float(figures["until_pushed"][key])  # type: ignore[index]


def draw(results: list[dict[str, object]]) -> str:
    """The SVG of every engine's bars."""
    longest = max(_value(figures, key) for figures in results for _, key, _ in BARS)
    scale = (HEIGHT - 20) / longest
    group = len(BARS) * (BAR + GAP) + GROUP_GAP
    width = max(LEFT + len(results) * group + 20, 560)  # room for the title
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{TOP + HEIGHT + 60}"'
        ' font-family="sans-serif" font-size="12">',
        '<text x="10" y="20" font-size="14">Seconds until a ~200 MB image is pushed'
        " (median; lower is better)</text>",
    ]
    for n, (label, _, colour) in enumerate(BARS):
        y = TOP + 10 + n * 18
        parts.append(f'<rect x="10" y="{y}" width="12" height="12" fill="{colour}"/>')
        parts.append(f'<text x="28" y="{y + 10}">{escape(label)}</text>')
    base = TOP + HEIGHT
    for g, figures in enumerate(results):
        x0 = LEFT + g * group
        for n, (_, key, colour) in enumerate(BARS):
            value = _value(figures, key)
            x = x0 + n * (BAR + GAP)
            height = value * scale
            parts.append(
                f'<rect x="{x}" y="{base - height:.1f}" width="{BAR}" height="{height:.1f}"'
                f' fill="{colour}"/>'
            )
            parts.append(
                f'<text x="{x + BAR / 2}" y="{base - height - 4:.1f}" text-anchor="middle"'
                f' font-size="10">{value:.2f}</text>'
            )
        engine = escape(str(figures["engine"]))
        middle = x0 + (len(BARS) * (BAR + GAP)) / 2
        parts.append(f'<text x="{middle}" y="{base + 18}" text-anchor="middle">{engine}</text>')
    parts.append(f'<line x1="{LEFT - 6}" y1="{base}" x2="{width - 10}" y2="{base}" stroke="#000"/>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def main() -> None:
    files = sorted(RESULTS.glob("conversions-*.json"))
    if not files:
        raise SystemExit(f"no figures in {RESULTS}: run benchmarks/conversions.py --save first")
    CHART.write_text(draw([json.loads(path.read_text()) for path in files]))
    print(f"wrote {CHART.relative_to(ROOT)} from {len(files)} engine(s)")


if __name__ == "__main__":
    main()
