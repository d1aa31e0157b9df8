"""The layer contract (pyproject.toml [tool.importlinter]) holds, and it would catch a lower
layer importing a higher one."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")


def _lint(src: Path, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(src)}
    return subprocess.run(
        [str(LINT), "--config", str(REPO / "pyproject.toml"), "--no-cache"],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=300,
    )


def test_layers_contract_is_kept(tmp_path):
    r = _lint(REPO / "src", tmp_path)
    assert r.returncode == 0, r.stdout[-2000:]
    assert "KEPT" in r.stdout


def test_layers_contract_catches_an_upward_import(tmp_path):
    src = tmp_path / "src"
    shutil.copytree(
        REPO / "src" / "unmask", src / "unmask", ignore=shutil.ignore_patterns("assets")
    )
    spec = src / "unmask" / "data" / "spec.py"
    spec.write_text(spec.read_text() + "\n\ndef _bad():\n    import unmask.inference.detect\n")
    r = _lint(src, tmp_path)
    assert r.returncode != 0
    assert "unmask.data is not allowed to import unmask.inference" in r.stdout
