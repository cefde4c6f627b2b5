"""Build the compact published table shipped in mgedb/data from a paper-data folder.

Usage: python bench/build_published_table.py [PAPER_DATA_DIR] [OUT_DIR]
(defaults: ../shared/paper-data next to the repository, and mgedb/data).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from mgedb.predict.published import load_published, write_shipped

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str]) -> int:
    src = Path(argv[1]) if len(argv) > 1 else ROOT.parent / "shared" / "paper-data"
    out = Path(argv[2]) if len(argv) > 2 else ROOT / "mgedb" / "data"
    data = load_published(src)
    sizes = write_shipped(data, out)
    lic = src / "LICENSE-Apache-2.0"
    if lic.is_file():
        shutil.copyfile(lic, out / "LICENSE-Apache-2.0-paper-data")
    for line in data.report.summary():
        print(line)
    for name, n in sizes.items():
        print(f"{out / name}: {n / 1024:.0f} KiB")
    print(f"total {sum(sizes.values()) / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
