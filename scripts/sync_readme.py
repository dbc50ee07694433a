"""Rewrite README.md's settings table from `tap-huey --about --format markdown`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
START, END = "<!-- settings:start -->", "<!-- settings:end -->"


def settings_table() -> str:
    """The `## Settings` section of the tap's markdown about text, without its heading."""
    about = subprocess.run(
        [str(Path(sys.executable).parent / "tap-huey"), "--about", "--format", "markdown"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    section = about.split("## Settings", 1)[1]
    return section.split("\n## ", 1)[0].strip()


def main() -> int:
    """Replace the block between the markers."""
    readme = ROOT / "README.md"
    text = readme.read_text(encoding="utf-8")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(f"{head}{START}\n{settings_table()}\n{END}{tail}", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
