"""The type checker over app/, as part of the suite (its settings: setup.cfg's [mypy])."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent


def test_app_type_checks():
    checked = subprocess.run([sys.executable, "-m", "mypy"], cwd=PROJECT, capture_output=True, text=True, timeout=600)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "Success" in checked.stdout
