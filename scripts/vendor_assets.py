"""Copy third-party browser files from node_modules into the app's static folder.

The files come from the npm registry through package.json and package-lock.json; nothing is
pasted into the repository. Run by `make setup` after `npm ci`.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NODE = ROOT / "node_modules"
STATIC = ROOT / "src" / "supportlens" / "web" / "static" / "vendor"

# destination name -> path inside node_modules
FILES = {
    "htmx.min.js": "htmx.org/dist/htmx.min.js",
    "chart.umd.js": "chart.js/dist/chart.umd.js",
    "simpleheat.js": "simpleheat/simpleheat.js",
    "axe.min.js": "axe-core/axe.min.js",
    "clarity.min.js": "clarity-js/build/clarity.min.js",
}


def main() -> int:
    STATIC.mkdir(parents=True, exist_ok=True)
    missing = [src for src in FILES.values() if not (NODE / src).is_file()]
    if missing:
        print(f"missing in node_modules (run npm ci): {', '.join(missing)}", file=sys.stderr)
        return 1
    for dest, src in FILES.items():
        shutil.copyfile(NODE / src, STATIC / dest)
    print(f"copied {len(FILES)} files into {STATIC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
