"""A production install holds no simulator: the wheel of `supportlens` is built and its files listed."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_product_wheel_has_no_simulator_demo_or_shop(tmp_path: Path) -> None:
    # A copy of what the build reads, so setuptools' build/ and egg-info stay out of the checkout.
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "src", source / "src", ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"))
    # The whole checkout is there too (sandbox/ beside src/), as in a real `pip install .`.
    shutil.copytree(
        ROOT / "sandbox", source / "sandbox", ignore=shutil.ignore_patterns("*.egg-info", "__pycache__")
    )
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(tmp_path), str(source)],
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
