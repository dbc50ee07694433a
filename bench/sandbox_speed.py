"""How fast the Huey sandbox starts and serves pages, against how fast a client can parse them.

Run: `.venv/bin/python bench/sandbox_speed.py [--rows 200000] [--threads 4] [--passes 5]`

It starts `huey-sandbox serve --rows N` as a subprocess and measures:

- start-up: from launch to the JSON line the server prints once it listens;
- serving: 1,000-row pages of `Providers` ordered by `ProviderID`, read by several threads
  that only take the raw bytes (`http.client`, one kept-alive connection each), keyset style
  (`q.where=ProviderID > N`, `q.pageNumber=1&q.pageSize=1000`) and page-number style
  (`q.pageNumber=k&q.pageSize=1000`), as pages/s and rows/s;
- parsing: `json.loads` of the same bodies in one thread, as rows/s.

It prints a table and the ratio serve rate / parse rate, for the first (cold) pass and as the
median of the later (warm) passes, with the machine's load average: client, server and anything
else running share the same cores. Targets: start-up under 15 s at 200,000 rows; serving at
least 5 times faster than parsing.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

PAGE_SIZE = 1000
STARTUP_TARGET = 15.0
RATIO_TARGET = 5.0


@dataclass
class Run:
    """One timed pass over every page of a view."""

    label: str
    pages: int
    rows: int
    bytes: int
    seconds: float

    @property
    def pages_per_second(self) -> float:
        return self.pages / self.seconds

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds


def start_sandbox(rows: int) -> tuple[subprocess.Popen[str], dict[str, Any], float]:
    """Launch `huey-sandbox serve`; returns the process, its announcement and start-up seconds."""
    executable = Path(sys.executable).with_name("huey-sandbox")
    command = [str(executable), "serve", "--rows", str(rows), "--port", "0"]
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    line = process.stdout.readline()
    startup = time.perf_counter() - started
    if not line:
        process.kill()
        raise SystemExit(f"huey-sandbox exited without announcing itself (code {process.wait()})")
    announcement = json.loads(line)
    announcement["startup_cpu_seconds"] = cpu_seconds(process.pid)
    return process, announcement, startup


def cpu_seconds(pid: int) -> float | None:
    """User and system CPU seconds a process has used so far (Linux only, else None)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def token(announcement: dict[str, Any]) -> str:
    """An access token, by client credentials in the form body."""
    response = requests.post(
        announcement["token_url"],
        data={
            "grant_type": "client_credentials",
            "client_id": announcement["client_id"],
            "client_secret": announcement["client_secret"],
        },
        timeout=30,
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


def fetch_all(
    url: str, bearer: str, queries: list[dict[str, str]], threads: int
) -> tuple[list[bytes], float]:
    """GET every query with `threads` threads reading raw bytes; the bodies in query order.

    Each thread keeps one HTTP/1.1 connection (`http.client`) and reads each body whole,
    without decoding it: the cheapest client Python has, so that the figure is the server's.
    """
    parts = urllib.parse.urlsplit(url)
    headers = {"Authorization": f"Bearer {bearer}", "Accept": "application/json"}
    bodies: list[bytes] = [b""] * len(queries)
    failures: list[str] = []
    cursor = iter(range(len(queries)))
    lock = threading.Lock()

    def work() -> None:
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
        try:
            while True:
                with lock:
                    index = next(cursor, None)
                if index is None:
                    return
                target = f"{parts.path}?{urllib.parse.urlencode(queries[index])}"
                connection.request("GET", target, headers=headers)
                response = connection.getresponse()
                body = response.read()
                if response.status != 200:
                    failures.append(f"{queries[index]}: HTTP {response.status}")
                    return
                bodies[index] = body
        finally:
            connection.close()

    workers = [threading.Thread(target=work) for _ in range(threads)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    seconds = time.perf_counter() - started
    if failures:
        raise SystemExit(f"the sandbox refused pages: {failures[:3]}")
    return bodies, seconds


def keyset_queries(total: int) -> list[dict[str, str]]:
    """Keyset pages: ProviderID is dense from 1, so each page's lower bound is known up front."""
    return [
        {
            "q.where": f"ProviderID > {start}",
            "q.orderBy": "ProviderID",
            "q.pageNumber": "1",
            "q.pageSize": str(PAGE_SIZE),
        }
        for start in range(0, total, PAGE_SIZE)
    ]


def page_number_queries(total: int) -> list[dict[str, str]]:
    """Page-number pages over the whole view."""
    return [
        {"q.orderBy": "ProviderID", "q.pageNumber": str(number), "q.pageSize": str(PAGE_SIZE)}
        for number in range(1, (total + PAGE_SIZE - 1) // PAGE_SIZE + 1)
    ]


def parse_rate(bodies: list[bytes]) -> Run:
    """Rows per second `json.loads` reaches on the bodies, in one thread."""
    rows = 0
    started = time.perf_counter()
    for body in bodies:
        rows += len(json.loads(body)["Result"])
    seconds = time.perf_counter() - started
    return Run("parse: json.loads, 1 thread", len(bodies), rows, sum(map(len, bodies)), seconds)


def serve(
    label: str,
    url: str,
    bearer: str,
    make: Callable[[int], list[dict[str, str]]],
    total: int,
    threads: int,
) -> tuple[Run, list[bytes]]:
    """One timed pass over every page, checking that the pages hold every row once."""
    bodies, seconds = fetch_all(url, bearer, make(total), threads)
    rows = sum(body.count(b'{"ProviderID":') for body in bodies)
    if rows != total:
        raise SystemExit(f"{label}: the pages held {rows} rows, not {total}")
    return Run(label, len(bodies), rows, sum(map(len, bodies)), seconds), bodies


def report(
    startup: float,
    startup_cpu: float | None,
    rows: int,
    runs: list[Run],
    parse: Run,
    threads: int,
    load: float,
) -> None:
    """Print the table, the ratios and whether the targets are met."""
    print()
    print(f"huey-sandbox, {rows:,} Providers rows, pages of {PAGE_SIZE:,}, {threads} threads")
    print(f"load average before the run: {load:.2f} on {os.cpu_count()} cores")
    print(f"start-up (launch to JSON line): {startup:.2f} s (target < {STARTUP_TARGET:g} s)")
    if startup_cpu is not None:
        print(f"start-up CPU time of the server process: {startup_cpu:.2f} s")
    print()
    print(f"{'measure':<40} {'pages':>6} {'MB':>8} {'seconds':>8} {'pages/s':>9} {'rows/s':>11}")
    for run in [*runs, parse]:
        print(
            f"{run.label:<40} {run.pages:>6} {run.bytes / 1e6:>8.1f} {run.seconds:>8.2f} "
            f"{run.pages_per_second:>9.1f} {run.rows_per_second:>11,.0f}"
        )
    print()
    print(f"parse rate: {parse.rows_per_second:,.0f} rows/s")
    for style in STYLES:
        mine = [run for run in runs if run.label.startswith(f"serve: {style},")]
        cold, warm = mine[0], mine[1:] or mine
        rate = statistics.median(run.rows_per_second for run in warm)
        ratio = rate / parse.rows_per_second
        verdict = "ok" if ratio >= RATIO_TARGET else "BELOW TARGET"
        print(
            f"{style}: serve {rate:,.0f} rows/s (median of warm passes) = {ratio:.1f}x parse "
            f"(target >= {RATIO_TARGET:g}x) {verdict}; cold pass "
            f"{cold.rows_per_second / parse.rows_per_second:.1f}x"
        )
    verdict = "ok" if startup < STARTUP_TARGET else "ABOVE TARGET"
    print(f"start-up: {startup:.2f} s {verdict}")


STYLES: dict[str, Callable[[int], list[dict[str, str]]]] = {
    "keyset": keyset_queries,
    "page-number": page_number_queries,
}


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark."""
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--rows", type=int, default=200_000, help="rows of Providers")
    options.add_argument("--threads", type=int, default=4, help="client threads reading pages")
    options.add_argument(
        "--passes", type=int, default=5, help="passes of each paging style; the first is cold"
    )
    args = options.parse_args(argv)
    load = os.getloadavg()[0]
    process, announcement, startup = start_sandbox(args.rows)
    try:
        total = announcement["views"]["Providers"]
        url = announcement["v3"] + "/views/Providers/records"
        bearer = token(announcement)
        runs: list[Run] = []
        bodies: list[bytes] = []
        for number in range(1, args.passes + 1):
            for style, make in STYLES.items():
                label = f"serve: {style}, pass {number}" + (" (cold)" if number == 1 else "")
                run, bodies = serve(label, url, bearer, make, total, args.threads)
                runs.append(run)
        parse = parse_rate(bodies)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
    startup_cpu = announcement["startup_cpu_seconds"]
    report(startup, startup_cpu, args.rows, runs, parse, args.threads, load)
    return 0


if __name__ == "__main__":
    sys.exit(main())
