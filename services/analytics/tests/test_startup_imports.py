"""Every analytics process starts without the libraries only one endpoint needs (goal #9: each
service ≤ 150 MB RSS): pyarrow for the Parquet export, scipy.stats for outcome intervals."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("pyarrow", "scipy.stats")


def test_the_service_starts_without_pyarrow_or_scipy_stats() -> None:
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
