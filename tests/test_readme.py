"""The README's Python examples run as written.

Every ```python block of README.md (repository root) runs, in order and in one namespace
(later blocks build on the names of earlier ones, as a reader types them), in a fresh
interpreter whose working directory is a temporary folder. Nothing is shrunk or patched:
the README itself must keep its examples small enough to run in seconds.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
_BLOCK = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.S | re.M)


def python_blocks(text: str) -> list[str]:
    """The bodies of the ```python fenced blocks of a markdown text, in order."""
    return [m.group(1) for m in _BLOCK.finditer(text)]


def run_blocks(blocks: list[str], cwd: Path, timeout: float = 300.0) -> subprocess.CompletedProcess:
    """Run the blocks one after the other in one namespace of a fresh interpreter.

    A failing block is named in the error output by its number (1-based).
    """
    script = "\n".join(
        [
            "import sys, traceback",
            "ns = {'__name__': '__main__'}",
            f"blocks = {blocks!r}",
            "for i, code in enumerate(blocks, 1):",
            "    try:",
            "        exec(compile(code, f'README block {i}', 'exec'), ns)",
            "    except Exception:",
            "        traceback.print_exc()",
            "        sys.exit(f'README python block {i} failed')",
        ]
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), *sys.path])}
    env.setdefault("MPLBACKEND", "Agg")
    return subprocess.run(
        [sys.executable, "-c", script], cwd=cwd, env=env, capture_output=True, text=True,
        timeout=timeout, check=False,
    )


def test_block_extraction_keeps_order_and_skips_other_languages():
    text = "x\n```python\na = 1\n```\n```bash\nls\n```\n```python\nb = a + 1\n```\n"
    assert python_blocks(text) == ["a = 1\n", "b = a + 1\n"]


def test_a_failing_block_is_reported_by_number(tmp_path):
    done = run_blocks(["a = 1\n", "raise ValueError('boom')\n"], tmp_path)
    assert done.returncode != 0 and "README python block 2 failed" in done.stderr


# The README of this commit uses names its blocks never define (``images``, ``encoder``,
# ``centers``) and a deep example that trains for minutes; the fix belongs to the README.
def test_readme_python_blocks_run_verbatim(tmp_path):
    blocks = python_blocks(README.read_text(encoding="utf-8"))
    assert blocks, "README.md has no ```python blocks"
    done = run_blocks(blocks, tmp_path)
    assert done.returncode == 0, done.stderr[-4000:]
