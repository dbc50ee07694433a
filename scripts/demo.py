"""Start the sandbox, load every view with `meltano run tap-huey target-csv`, and summarise."""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def start_sandbox(rows: int) -> tuple[subprocess.Popen[str], dict[str, object]]:
    """Run `huey-sandbox serve` and read the JSON line it announces itself with."""
    process = subprocess.Popen(
        [str(BIN / "huey-sandbox"), "serve", "--rows", str(rows), "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        process.wait()
        raise SystemExit("The sandbox did not start.")
    return process, json.loads(line)


def main() -> int:
    """Run the demo pipeline end to end."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=5000, help="rows of the providers view")
    args = parser.parse_args()

    output = ROOT / "output" / "csv"
    shutil.rmtree(output, ignore_errors=True)
    sandbox, announced = start_sandbox(args.rows)
    try:
        print(f"Sandbox serving at {announced['url']} with views {announced['views']}")
        env = os.environ | {
            # The demo keeps its own Meltano state, so that it never leaves a bookmark behind
            # for a real pipeline in this project, and it reads every view whatever is selected.
            "MELTANO_DATABASE_URI": f"sqlite:///{ROOT / '.meltano' / 'demo.db'}",
            "TAP_HUEY__SELECT": '["*.*"]',
            "TAP_HUEY_VIEWS": "[]",
            "TAP_HUEY_TIMEZONE": "UTC",
            "TAP_HUEY_CLIENT_ID": str(announced["client_id"]),
            "TAP_HUEY_CLIENT_SECRET": str(announced["client_secret"]),
            "TAP_HUEY_API_URL": str(announced["url"]),
        }
        command = [str(BIN / "meltano"), "run", "--full-refresh", "tap-huey", "target-csv"]
        print("Running:", " ".join(command[1:]))
        result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
        if result.returncode != 0:
            print(result.stderr[-4000:], file=sys.stderr)
            print(f"meltano run failed with exit code {result.returncode}.", file=sys.stderr)
            return result.returncode
    finally:
        sandbox.send_signal(signal.SIGINT)
        sandbox.wait(30)

    expected: dict[str, int] = dict(announced["views"])  # type: ignore[arg-type]
    print(f"\nLoaded into {output.relative_to(ROOT)}/:")
    print(f"{'view':<22}{'rows':>8}{'columns':>9}{'in sandbox':>12}  file")
    complete = True
    for view, count in expected.items():
        path = output / f"{view}.csv"
        if not path.exists():
            print(f"{view:<22}{'-':>8}{'-':>9}{count:>12}  missing")
            complete = False
            continue
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            header = next(reader)
            key = header.index("PK_ID") if "PK_ID" in header else 0
            keys = [row[key] for row in reader]
        rows = len(keys)
        complete &= rows == count == len(set(keys))
        print(f"{view:<22}{rows:>8}{len(header):>9}{count:>12}  {path.relative_to(ROOT)}")
    print("\nEvery view loaded, every row once." if complete else "\nSome rows are missing.")
    return 0 if complete else 1


if __name__ == "__main__":
    sys.exit(main())
