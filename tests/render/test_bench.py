"""The render benchmark runs and holds its own bar."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "render.py"


# A timing run (a subprocess rendering an edition and 300 recipients): seconds, and on a busy
# machine a flaky measurement, so not in `-m unit`.
@pytest.mark.heavy
def test_personalising_costs_under_a_tenth_of_rendering() -> None:
    """bench/render.py prints both costs and exits 0 only if one recipient's links and
    MIME build cost under a tenth of rendering the edition once."""
    result = subprocess.run(
        [sys.executable, str(BENCH), "--repeat", "3", "--recipients", "300"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "per edition   premailer" in result.stdout
    assert "(must stay under 0.1)" in result.stdout
