"""Draw the documentation's charts from the figures the benchmarks saved.

Reads ``benchmarks/results/conversions-*.json`` (written by ``conversions.py
--save``) and writes ``docs/conversions.svg``: for each engine, the seconds
until a ~200 MB image is pushed, by each way, beside the engine's own
``docker save`` of it. Reads ``benchmarks/results/curves-*.json`` (written by
``curves.py``) and writes ``docs/curves.svg``: for each engine, how the time
to pushed grows with the image's size and with the conversions at once,
beside ``docker save`` alone. Plain SVG, no plotting library.

Usage: .venv/bin/python benchmarks/chart.py
"""

from __future__ import annotations

import json
from html import escape
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
CHART = ROOT / "docs" / "conversions.svg"
CURVES = ROOT / "docs" / "curves.svg"

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


COLOURS = ["#1565c0", "#2e7d32", "#c62828", "#6a1b9a", "#ef6c00"]
PANELS = [
    ("by_size_mb", "one image of ... MB", "MB"),
    ("by_conversions_at_once", "conversions of ~200 MB at once", "at once"),
]
PANEL_WIDTH, PANEL_HEIGHT, PANEL_LEFT = 330, 240, 60


def draw_curves(results: list[dict[str, object]]) -> str:
    """The SVG of every engine's curves: solid, the library's native conversion;
    dashed, the engine's docker save alone; one panel per curve, linear in seconds."""
    top = 50 + 18 * len(results)
    width = PANEL_LEFT + len(PANELS) * (PANEL_WIDTH + PANEL_LEFT) + 10
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}"'
        f' height="{top + PANEL_HEIGHT + 50}" font-family="sans-serif" font-size="12">',
        '<text x="10" y="20" font-size="14">Seconds until pushed (solid: native, layers as'
        " they are; dashed: docker save alone)</text>",
    ]
    for n, figures in enumerate(results):
        y = 36 + n * 18
        colour = COLOURS[n % len(COLOURS)]
        parts.append(f'<rect x="10" y="{y}" width="12" height="12" fill="{colour}"/>')
        parts.append(f'<text x="28" y="{y + 10}">{escape(str(figures["engine"]))}</text>')
    for p, (key, title, unit) in enumerate(PANELS):
        x0 = PANEL_LEFT + p * (PANEL_WIDTH + PANEL_LEFT)
        points = list(results[0][key])  # type: ignore[call-overload]
        longest = max(
            max(float(v["seconds"]), float(v["docker_save_alone"]))
            for figures in results
            for v in figures[key].values()  # type: ignore[attr-defined]
        )
        base = top + PANEL_HEIGHT
        step = PANEL_WIDTH / max(len(points) - 1, 1)
        parts.append(f'<text x="{x0}" y="{top - 8}">{escape(title)}</text>')
        parts.append(
            f'<line x1="{x0}" y1="{base}" x2="{x0 + PANEL_WIDTH}" y2="{base}" stroke="#000"/>'
        )
        parts.append(f'<line x1="{x0}" y1="{top}" x2="{x0}" y2="{base}" stroke="#000"/>')
        parts.append(
            f'<text x="{x0 - 6}" y="{top + 4}" text-anchor="end"'
            f' font-size="10">{longest:.0f} s</text>'
        )
        parts.append(f'<text x="{x0 - 6}" y="{base}" text-anchor="end" font-size="10">0</text>')
        for i, label in enumerate(points):
            parts.append(
                f'<text x="{x0 + i * step:.1f}" y="{base + 16}" text-anchor="middle"'
                f' font-size="10">{escape(label)}</text>'
            )
        parts.append(
            f'<text x="{x0 + PANEL_WIDTH / 2}" y="{base + 32}" text-anchor="middle">{unit}</text>'
        )
        for n, figures in enumerate(results):
            colour = COLOURS[n % len(COLOURS)]
            values: dict[str, dict[str, float]] = figures[key]  # type: ignore[assignment]
            for field, dash in (("seconds", ""), ("docker_save_alone", ' stroke-dasharray="4 3"')):
                heights = [values[label][field] / longest * PANEL_HEIGHT for label in points]
                line = " ".join(
                    f"{x0 + i * step:.1f},{base - height:.1f}" for i, height in enumerate(heights)
                )
                parts.append(
                    f'<polyline points="{line}" fill="none" stroke="{colour}"'
                    f' stroke-width="2"{dash}/>'
                )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def main() -> None:
    files = sorted(RESULTS.glob("conversions-*.json"))
    if not files:
        raise SystemExit(f"no figures in {RESULTS}: run benchmarks/conversions.py --save first")
    CHART.write_text(draw([json.loads(path.read_text()) for path in files]))
    print(f"wrote {CHART.relative_to(ROOT)} from {len(files)} engine(s)")
    curves = sorted(RESULTS.glob("curves-*.json"))
    if curves:
        CURVES.write_text(draw_curves([json.loads(path.read_text()) for path in curves]))
        print(f"wrote {CURVES.relative_to(ROOT)} from {len(curves)} engine(s)")


if __name__ == "__main__":
    main()
