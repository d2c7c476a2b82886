"""A production install holds no simulator: the wheel of `supportlens` is built and its files listed."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_product_wheel_has_no_simulator_demo_or_shop(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(tmp_path), str(ROOT)],
        check=True,
        timeout=600,
    )
    (wheel,) = tmp_path.glob("supportlens-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert any(n.startswith("supportlens/mapping/scoring.py") for n in names)
    assert any(n.startswith("supportlens/web/templates/") for n in names)
    development = [n for n in names if "sandbox" in n.split("/")[0] or "/sandbox/" in n or "shop" in n]
    assert development == []
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "supportlens.commands" not in zipfile.ZipFile(wheel).read(entry_points).decode()
