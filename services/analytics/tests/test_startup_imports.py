"""Every analytics process starts without the libraries only one endpoint needs (goal #9: each
service ≤ 150 MB RSS): pyarrow for the Parquet export, scipy.stats for outcome intervals,
SciPy's linear algebra and solvers for checking suppressed tables."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("pyarrow", "scipy.stats", "scipy.linalg", "scipy.optimize")


def test_the_service_starts_without_pyarrow_or_scipy() -> None:
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import json, sys, huddle_analytics.service; "
            f"print(json.dumps([m for m in {list(HEAVY)!r} if m in sys.modules]))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(loaded.stdout) == []
