"""The README's and the documentation's promises that can be checked without Docker."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).parents[2]
README = ROOT / "README.md"
DOCS = ROOT / "docs"


def test_every_row_of_the_fault_table_names_a_test_that_exists() -> None:
    """Each bad input or fault in the table is backed by a real test function."""
    errors = (DOCS / "errors.md").read_text()
    section = errors.split("## Bad input and faults", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and "`tests/" in line]
    assert len(rows) >= 20
    for row in rows:
        for path, name in re.findall(r"`(tests/[^`:]+)::(\w+)`", row):
            source = (ROOT / path).read_text()
            assert re.search(rf"^(async )?def {name}\(", source, re.MULTILINE), row


def test_the_readme_is_what_a_newcomer_reads_first() -> None:
    """At most about 8 KB, with an install section, a quick start, and links that lead somewhere."""
    text = README.read_text()
    assert len(text.encode()) <= 8 * 1024
    for heading in ("## Install", "## Quick start", "## Two commands", "## Read more"):
        assert heading in text
    links = re.findall(r"\]\(([^)#]+)\)", text)
    assert links
    for link in links:
        assert (ROOT / link).is_file(), link


def test_every_page_of_the_site_is_in_its_navigation() -> None:
    """No page is left out of mkdocs.yml's nav, and the nav names no missing page."""
    config = (ROOT / "mkdocs.yml").read_text()
    named = set(re.findall(r":\s*(\S+\.md)\s*$", config, re.MULTILINE))
    assert named == {page.name for page in DOCS.glob("*.md")}


def _chart() -> Any:
    """benchmarks/chart.py, imported from its file."""
    spec = importlib.util.spec_from_file_location("chart", ROOT / "benchmarks" / "chart.py")
    assert spec is not None
    assert spec.loader is not None
    chart = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(chart)
    return chart


def test_the_performance_chart_is_drawn_from_the_saved_figures() -> None:
    """docs/conversions.svg is what benchmarks/chart.py draws from benchmarks/results/."""
    chart = _chart()
    files = sorted((ROOT / "benchmarks" / "results").glob("conversions-*.json"))
    assert files
    drawn = chart.draw([json.loads(path.read_text()) for path in files])
    assert (DOCS / "conversions.svg").read_text() == drawn


def test_the_cost_curves_are_drawn_from_the_saved_figures() -> None:
    """docs/curves.svg is what benchmarks/chart.py draws from benchmarks/results/curves-*."""
    chart = _chart()
    files = sorted((ROOT / "benchmarks" / "results").glob("curves-*.json"))
    assert files
    drawn = chart.draw_curves([json.loads(path.read_text()) for path in files])
    assert (DOCS / "curves.svg").read_text() == drawn


def test_the_engines_page_gives_the_pinned_images_an_offline_machine_needs() -> None:
    """Each default image, with its option and variable, as the library pins them."""
    import ephemeral_registry
    from ephemeral_registry._options import OPTION_ENVS

    engines = (DOCS / "engines.md").read_text()
    section = engines.split("## Without the internet", 1)[1].split("\n## ", 1)[0]
    for image in (
        ephemeral_registry.DEFAULT_REGISTRY_IMAGE,
        ephemeral_registry.DEFAULT_CRANE_IMAGE,
        ephemeral_registry.DEFAULT_RELAY_IMAGE,
    ):
        assert f"`{image}`" in section, image
    for option, env in OPTION_ENVS.items():
        if not option.endswith("_image"):
            continue  # not an image
        assert f"`{option}=`" in section, option
        assert f"`{env}`" in section, env


def test_the_readme_and_the_site_install_alike_naming_every_extra() -> None:
    """One install section, the same on the package index page and the site's front page,
    with a line for each extra a user may want (the dev, fuzz and docs extras are ours)."""
    import tomllib

    def install(text: str) -> str:
        return text.split("## Install", 1)[1].split("\n## ", 1)[0].strip()

    readme = install(README.read_text())
    assert readme == install((DOCS / "index.md").read_text())
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    for extra in set(extras) - {"dev", "fuzz", "docs"}:
        assert f"'ephemeral-registry[{extra}]'" in readme, extra
