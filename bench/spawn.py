"""Start the benchmark's clients from a small process and measure each one with `os.wait4`.

`bench/compare.py` holds the sandbox (hundreds of MB of rows) in its own process. A child
forked from that process inherits its peak RSS: Linux carries the parent's memory high-water
mark across `exec` into the child's `ru_maxrss`, so every client would report at least the
sandbox's size. This launcher is started before the sandbox exists, stays at about 10 MB, and
runs each client on request:

    stdin:  one JSON object a line: argv, env, stdout (a path, or null for /dev/null),
            stderr (a path), cwd, timeout (seconds)
    stdout: one JSON object a line: wall, user, sys, max_rss_kb, exit_code, timed_out

Wall time runs from just before the child is started to the moment `wait4` returns; CPU time and
peak RSS come from the child's rusage (the child and any children it waited for).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any


def run(job: dict[str, Any]) -> dict[str, Any]:
    """Run one client to its end or its timeout; its rusage."""
    stdout: Any = subprocess.DEVNULL
    if job.get("stdout"):
        stdout = open(job["stdout"], "wb")  # noqa: SIM115 - closed below
    with open(job["stderr"], "wb") as stderr:
        started = time.perf_counter()
        process = subprocess.Popen(
            job["argv"],
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            env=job["env"],
            cwd=job.get("cwd"),
            start_new_session=True,
        )
        timed_out = threading.Event()

        def kill() -> None:
            timed_out.set()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)

        timer = threading.Timer(float(job["timeout"]), kill)
        timer.start()
        try:
            _, status, usage = os.wait4(process.pid, 0)
        finally:
            timer.cancel()
        wall = time.perf_counter() - started
    if stdout is not subprocess.DEVNULL:
        stdout.close()
    exit_code = os.waitstatus_to_exitcode(status)
    process.returncode = exit_code  # reaped already: keep Popen from waiting for it again
    return {
        "wall": wall,
        "user": usage.ru_utime,
        "sys": usage.ru_stime,
        "max_rss_kb": usage.ru_maxrss,
        "exit_code": exit_code,
        "timed_out": timed_out.is_set(),
    }


def main() -> int:
    """Serve jobs from stdin until it closes."""
    for line in sys.stdin:
        if line.strip():
            print(json.dumps(run(json.loads(line))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
