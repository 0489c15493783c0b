"""The documentation sources document every public name (no build: the build runs in CI)."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

import whyclust

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
API = DOCS / "api.rst"


def autosummary_entries(text: str) -> dict[str, list[str]]:
    """Entries of every ``.. autosummary::`` block, grouped by the section (level-2 title)."""
    lines = text.splitlines()
    sections: dict[str, list[str]] = {}
    section, inside = "", False
    for i, line in enumerate(lines):
        if i + 1 < len(lines) and re.fullmatch(r"-{3,}", lines[i + 1]) and line.strip():
            section, inside = line.strip(), False
            continue
        if line.startswith(".. autosummary::"):
            inside = True
            continue
        if inside:
            if not line.strip() or line.startswith("   :"):
                continue
            if line.startswith("   "):
                sections.setdefault(section, []).append(line.strip())
            else:
                inside = False
    return sections


def test_api_reference_documents_exactly_the_top_level_names():
    sections = autosummary_entries(API.read_text())
    top = sections["Top-level names"] + sections["Modules in the top-level namespace"]
    assert all(name.startswith("whyclust.") for name in top)
    documented = [name.removeprefix("whyclust.") for name in top]
    assert len(documented) == len(set(documented)), "a name is documented twice"
    public = set(whyclust.__all__) - {"__version__"}  # a string, named in the page's text
    assert set(documented) == public
    assert "__version__" in API.read_text()


def test_other_public_modules_are_documented_and_importable():
    sections = autosummary_entries(API.read_text())
    modules = sections["Other public modules"]
    for name in ("whyclust.api", "whyclust.summary", "whyclust.report"):
        assert name in modules
    for name in modules:
        module = importlib.import_module(name)
        assert module.__all__, f"{name} has an empty __all__"
        for attr in module.__all__:
            assert hasattr(module, attr), f"{name}.__all__ names a missing {attr}"


def test_cli_reference_points_at_the_click_group():
    text = (DOCS / "cli.rst").read_text()
    target = re.search(r"\.\. click:: ([\w.]+):(\w+)", text)
    module = importlib.import_module(target.group(1))
    import click

    assert isinstance(getattr(module, target.group(2)), click.Group)


def test_docs_stay_inside_the_repository():
    for path in [*DOCS.rglob("*.rst"), *DOCS.rglob("*.md"), *(ROOT / "examples").glob("*.py")]:
        if "_build" in path.parts or "auto_examples" in path.parts or "generated" in path.parts:
            continue
        text = path.read_text()
        assert "DESIGN.md" not in text and "/shared" not in text, path
    math = (DOCS / "mathematics.rst").read_text()
    assert "http://" not in math and "https://" not in math


def test_gallery_examples_are_sphinx_gallery_scripts():
    examples = sorted((ROOT / "examples").glob("plot_*.py"))
    assert len(examples) >= 6
    for path in examples:
        doc = ast.get_docstring(ast.parse(path.read_text()))
        assert doc is not None, f"{path.name} has no docstring"
        title, underline = doc.strip().splitlines()[:2]
        assert set(underline) == {"="} and len(underline) >= len(title), path.name


@pytest.mark.parametrize("page", ["mathematics.rst", "user_guide/pipelines_mixtures.rst"])
def test_math_pages_cover_their_topics(page):
    text = (DOCS / page).read_text()
    for word in ("Pipelines", "Gaussian mixtures", "Bisecting"):
        assert word in text
