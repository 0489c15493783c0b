"""Sphinx configuration of the whyclust documentation (``make docs``)."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("TQDM_DISABLE", "1")

import whyclust  # noqa: E402

project = "whyclust"
author = "whyclust developers"
copyright = "whyclust developers"
version = release = whyclust.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx-mathjax-offline",  # MathJax copied into the build: the site works offline
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "sphinx_click",
    "myst_parser",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "**.ipynb_checkpoints", "auto_examples/*.ipynb",
                    "auto_examples/*.py", "auto_examples/*.zip"]  # fmt: skip
templates_path = ["_templates"]
myst_enable_extensions = ["dollarmath", "colon_fence"]
myst_heading_anchors = 3

# API reference: one page per public name, generated from the docstrings
autosummary_generate = True
autosummary_imported_members = True
autosummary_ignore_module_all = False  # a module's __all__ is its public API
autodoc_default_options = {"members": False, "inherited-members": False}
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_validation_checks: set[str] = set()
mathjax3_config = {"tex": {"macros": {"R": r"\mathbb{R}"}}}

sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "ignore_pattern": r"showcase\.py|__init__\.py",
    "within_subsection_order": "FileNameSortKey",
    "download_all_examples": False,
    "remove_config_comments": True,
    "show_memory": False,
    "plot_gallery": "True",
    "abort_on_example_error": True,
    "matplotlib_animations": False,
    "image_scrapers": ("matplotlib",),
    "reset_modules": ("matplotlib",),
    "min_reported_time": 0,
    "show_signature": False,
}

html_theme = "pydata_sphinx_theme"
html_title = f"whyclust {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "navbar_end": ["theme-switcher", "navbar-icon-links"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
    "secondary_sidebar_items": ["page-toc"],
    "icon_links": [],
}
html_show_sourcelink = False
html_static_path: list[str] = []
html_context = {"default_mode": "light"}


_ATTRIBUTE_LINE = re.compile(r"^\s*\*{0,2}\w[\w, ]*\s:\s|^\s*\w+_\s*$")
_TRAILING_UNDERSCORE = re.compile(r"(?<![\w`*:|])(\*?[A-Za-z]\w*_)(?![\w`])")
_DESIGN_NOTE = re.compile(r"DESIGN\.md(?:,? sections?(?: \d+(?:,| and| -)?)+)?")
_BARS = re.compile(r"(?<![\\`])\|([^|`\n]+?)\|")


def _quote_fitted_attributes(app, what, name, obj, options, lines) -> None:
    """Put fitted-attribute names (``labels_``) in literals: in reST a trailing underscore
    makes a word a hyperlink reference, which fails the build. Likewise ``|x|`` (an
    absolute value in our docstrings) would be a substitution reference."""
    for i, line in enumerate(lines):
        # the team's design note is not shipped: point at the mathematics page instead
        lines[i] = line = _DESIGN_NOTE.sub("the :doc:`/mathematics` page", line)
        if _ATTRIBUTE_LINE.match(line):
            continue
        parts = line.split("``")
        for j in range(0, len(parts), 2):  # only outside existing literals
            text = _TRAILING_UNDERSCORE.sub(r"``\1``", parts[j])
            if ":math:" not in text:
                text = _BARS.sub(r"\\|\1\\|", text)  # |x| is an absolute value here
            parts[j] = text
        lines[i] = "``".join(parts)


def setup(app) -> None:
    # before numpydoc (raw docstrings) and after it (text it pulls in from properties)
    app.connect("autodoc-process-docstring", _quote_fitted_attributes, priority=400)
    app.connect("autodoc-process-docstring", _quote_fitted_attributes, priority=600)
