"""tap-huey against the floor, tap-rest-api-msdk and dlt, on one Caspio view of the sandbox.

Run it through `bench/run` (which installs everything first); `bench/run --quick` for a short
trial. See bench/README.md for what it measures and how to read it.

The sandbox (`huey_sandbox.server.SandboxServer`) runs in this process, in a thread, so that its
request log counts the API calls of each client; every client runs as its own process, started
by `bench/spawn.py` (a small launcher, so that the client's peak RSS is its own) and measured with
`os.wait4`: wall time, CPU time (user + sys) and peak RSS. Every client reads the same view,
`Providers`, and writes Singer messages to /dev/null (dlt: its extract step into its own files).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import math
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
VENV_BIN = ROOT / ".venv" / "bin"
VIEW = "Providers"
KEY = "ProviderID"
PAGE_SIZE = 1000
WARMUP_ROWS = 2000
LATENCY = 0.1


# ----------------------------------------------------------------------------------------------
# Clients
# ----------------------------------------------------------------------------------------------


@dataclass
class Sandbox:
    """What a client needs to know of the running sandbox."""

    url: str
    client_id: str
    client_secret: str


@dataclass
class Client:
    """One way of reading the view: how to start it and how to tell how many rows it delivered.

    Attributes:
        key: a short identifier, used in file names and the raw results.
        label: the name shown in tables.
        short: the name under its bars in the plot.
        make: writes the client's files into a work directory and returns its argv.
        rows: reads the rows delivered from the work directory and the client's stderr.
        config: the configuration a user would write, with the secret left out, for the report.
    """

    key: str
    label: str
    short: str
    make: Callable[[Sandbox, Path], list[str]]
    rows: Callable[[Path, str], int | None]
    config: Callable[[Sandbox], dict[str, Any]]
    env: dict[str, str] = field(default_factory=dict)


def write_json(path: Path, data: dict[str, Any]) -> Path:
    """Write a config file only its owner can read (it holds the client secret)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        json.dump(data, file, indent=2)
    return path


def singer_record_count(_: Path, stderr: str) -> int | None:
    """Rows a Meltano SDK tap emitted: the sum of its `record_count` metrics on stderr."""
    total, seen = 0, False
    for line in stderr.splitlines():
        _, marker, payload = line.partition("METRIC: ")
        if not marker:
            continue
        try:
            metric = json.loads(payload)
        except ValueError:
            continue
        if metric.get("metric") == "record_count":
            total += int(metric.get("value", 0))
            seen = True
    return total if seen else None


def tap_huey_client(max_parallel: int | None, label: str, short: str, key: str) -> Client:
    """tap-huey with the given `max_parallel_requests` (None: the setting is left out)."""

    def config(sandbox: Sandbox) -> dict[str, Any]:
        data: dict[str, Any] = {
            "client_id": sandbox.client_id,
            "client_secret": sandbox.client_secret,
            "api_url": sandbox.url,
            "views": [VIEW],
        }
        if max_parallel is not None:
            data["max_parallel_requests"] = max_parallel
        return data

    def make(sandbox: Sandbox, work: Path) -> list[str]:
        path = write_json(work / "tap-huey.json", config(sandbox))
        return [str(VENV_BIN / "tap-huey"), "--config", str(path)]

    return Client(key, label, short, make, singer_record_count, config)


def floor_client() -> Client:
    """bench/floor.py: token, pages, json.loads, one RECORD line per row."""

    def config(sandbox: Sandbox) -> dict[str, Any]:
        return {
            "client_id": sandbox.client_id,
            "client_secret": sandbox.client_secret,
            "api_url": sandbox.url,
            "view": VIEW,
            "order_by": KEY,
        }

    def make(sandbox: Sandbox, work: Path) -> list[str]:
        path = write_json(work / "floor.json", config(sandbox))
        return [str(VENV_BIN / "python"), str(BENCH / "floor.py"), str(path)]

    def rows(_: Path, stderr: str) -> int | None:
        for line in stderr.splitlines():
            if line.startswith("rows="):
                return int(line[5:])
        return None

    return Client("floor", "floor (bench/floor.py)", "floor", make, rows, config)


def msdk_config(sandbox: Sandbox, fixed: bool) -> dict[str, Any]:
    """tap-rest-api-msdk's config for the view, as its README documents the settings.

    OAuth client credentials (`auth_method: oauth`, `grant_type: client_credentials`,
    `access_token_url`); the stream's path, `records_path: $.Result[*]`, its params (page size
    and order); page-number paging with `pagination_request_style: page_number_paginator`, the
    page number sent as `pagination_next_page_param: q.pageNumber` from
    `pagination_initial_offset: 1`.

    That paginator goes on while `next_page_token_path` (default: a `hasMore` field) finds a
    truthy value in the answer. Caspio's answer has no such field, so as documented it stops after
    the first page. `fixed` points `next_page_token_path` at `$.Result[999]`, the 1,000th record,
    which exists exactly when the page was full: it then reads until the first short page.
    """
    config: dict[str, Any] = {
        "api_url": sandbox.url,
        "auth_method": "oauth",
        "grant_type": "client_credentials",
        "access_token_url": sandbox.url + "/oauth/token",
        "client_id": sandbox.client_id,
        "client_secret": sandbox.client_secret,
        "pagination_request_style": "page_number_paginator",
        "pagination_response_style": "page",
        "pagination_next_page_param": "q.pageNumber",
        "pagination_initial_offset": 1,
        "streams": [
            {
                "name": VIEW,
                "path": f"/integrations/rest/v3/views/{VIEW}/records",
                "params": {"q.pageSize": PAGE_SIZE, "q.orderBy": KEY},
                "primary_keys": [KEY],
                "records_path": "$.Result[*]",
            }
        ],
    }
    if fixed:
        config["next_page_token_path"] = f"$.Result[{PAGE_SIZE - 1}]"
    return config


def msdk_client(venv: Path, fixed: bool) -> Client:
    """tap-rest-api-msdk, configured from its documentation (and, if `fixed`, made to go on)."""

    def make(sandbox: Sandbox, work: Path) -> list[str]:
        path = write_json(work / "tap-rest-api-msdk.json", msdk_config(sandbox, fixed))
        return [str(venv / "bin" / "tap-rest-api-msdk"), "--config", str(path)]

    if fixed:
        key, label = "msdk-fixed", "tap-rest-api-msdk (next_page_token_path fix)"
        short = "tap-rest-api-msdk\nwith the fix"
    else:
        key, label = "msdk-docs", "tap-rest-api-msdk (as documented)"
        short = "tap-rest-api-msdk\nas documented"
    return Client(key, label, short, make, singer_record_count, lambda s: msdk_config(s, fixed))


def dlt_client(venv: Path) -> Client:
    """dlt's REST API source, extract step only (bench/dlt_extract.py holds its config)."""

    def config(sandbox: Sandbox) -> dict[str, Any]:
        return {
            "client_id": sandbox.client_id,
            "client_secret": sandbox.client_secret,
            "api_url": sandbox.url,
            "view": VIEW,
            "page_size": PAGE_SIZE,
            "order_by": KEY,
        }

    def make(sandbox: Sandbox, work: Path) -> list[str]:
        path = write_json(work / "dlt.json", config(sandbox))
        return [
            str(venv / "bin" / "python"),
            str(BENCH / "dlt_extract.py"),
            str(path),
            str(work / "pipelines"),
            str(work / "dlt-result.json"),
        ]

    def rows(work: Path, _: str) -> int | None:
        result = work / "dlt-result.json"
        if not result.exists():
            return None
        return int(json.loads(result.read_text())["rows"])

    def shown(sandbox: Sandbox) -> dict[str, Any]:
        sys.path.insert(0, str(BENCH))
        try:
            from dlt_extract import source_config
        finally:
            sys.path.pop(0)
        return source_config(config(sandbox))

    env = {
        "RUNTIME__DLTHUB_TELEMETRY": "false",
        "RUNTIME__LOG_LEVEL": "WARNING",
    }
    return Client(
        "dlt", "dlt rest_api_source (extract)", "dlt\n(extract)", make, rows, shown, env=env
    )


# ----------------------------------------------------------------------------------------------
# Running and measuring
# ----------------------------------------------------------------------------------------------


@dataclass
class Measurement:
    """One client's run against one sandbox."""

    client: str
    label: str
    view_rows: int
    latency: float
    wall: float
    cpu: float
    peak_mb: float
    exit_code: int
    timed_out: bool
    rows: int | None
    token_calls: int
    discovery_calls: int
    data_calls: int
    rows_served: int
    extract_wall: float | None = None
    extract_cpu: float | None = None
    warnings: int = 0
    stderr_tail: str = ""
    wall_runs: list[float] = field(default_factory=list)
    cpu_runs: list[float] = field(default_factory=list)
    incomplete_runs: int = 0

    @property
    def complete(self) -> bool:
        """Whether the run ended well and delivered every row of the view."""
        return self.exit_code == 0 and not self.timed_out and self.rows == self.view_rows

    @property
    def per_wall(self) -> float:
        """Rows delivered per second of wall time."""
        return (self.rows or 0) / self.wall if self.wall > 0 else 0.0

    @property
    def per_cpu(self) -> float:
        """Rows delivered per CPU second."""
        return (self.rows or 0) / self.cpu if self.cpu > 0 else 0.0


def median_run(runs: list[Measurement]) -> Measurement:
    """The run with the median wall time, carrying every run's wall and CPU times."""
    ordered = sorted(runs, key=lambda m: m.wall)
    chosen = ordered[(len(ordered) - 1) // 2]
    chosen.wall_runs = [m.wall for m in runs]
    chosen.cpu_runs = [m.cpu for m in runs]
    chosen.incomplete_runs = sum(not m.complete for m in runs)
    return chosen


def spread(value: float, runs: list[float], digits: int = 1) -> str:
    """A value, with the range of the runs when there were several."""
    if len(runs) < 2:
        return f"{value:.{digits}f}"
    return f"{value:.{digits}f} ({min(runs):.{digits}f}-{max(runs):.{digits}f})"


class Launcher:
    """bench/spawn.py, started while this process is still small."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(BENCH / "spawn.py")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def run(self, job: dict[str, Any]) -> dict[str, Any]:
        """Run one job; its measurements."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps(job) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise SystemExit("bench/spawn.py ended unexpectedly")
        return dict(json.loads(line))

    def close(self) -> None:
        """Let the launcher end."""
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(30)


def classify(log: list[dict[str, Any]]) -> tuple[int, int, int, int]:
    """Token, discovery and data calls, and the rows the data calls returned.

    Data calls are records requests that read a page (they carry `q.pageNumber`); every other
    request to the API (views, fields, a schema sample or a count read from `/records` without a
    page number) is a discovery call.
    """
    token = discovery = data = served = 0
    for entry in log:
        path = entry.get("path", "")
        if path.endswith("/oauth/token"):
            token += 1
        elif path.endswith("/records") and any(
            name.lower() == "q.pagenumber" for name in entry.get("query", {})
        ):
            data += 1
            served += int(entry.get("rows") or 0)
        else:
            discovery += 1
    return token, discovery, data, served


def timeout_for(rows: int, latency: float) -> float:
    """A bound on one client run: generous for the slowest client, short of runaway."""
    pages = rows / PAGE_SIZE
    return 90 + rows * 0.0015 + pages * latency * 3


class Bench:
    """One sandbox at a time, every client run against it."""

    def __init__(self, launcher: Launcher, results: Path, log: Callable[[str], None]) -> None:
        self.launcher = launcher
        self.results = results
        self.log = log
        self.server: Any = None
        self.sandbox: Sandbox | None = None
        self.view_rows = 0
        self.latency = 0.0
        self.runs = 0

    def start(self, rows: int, latency: float) -> None:
        """Start a sandbox with `rows` rows in the view and `latency` seconds per request."""
        from huey_sandbox.faults import Faults
        from huey_sandbox.server import SandboxServer

        self.stop()
        started = time.perf_counter()
        self.server = SandboxServer(rows=rows, faults=Faults(latency=latency)).start()
        # The rows live as long as the server: keep the cyclic collector from walking them.
        gc.freeze()
        self.sandbox = Sandbox(self.server.url, self.server.client_id, self.server.client_secret)
        self.view_rows = self.count(rows)
        self.latency = latency
        self.log(
            f"sandbox: {self.view_rows:,} rows in {VIEW}, {latency * 1000:g} ms latency, "
            f"started in {time.perf_counter() - started:.1f} s"
        )

    def count(self, asked: int) -> int:
        """The rows in the view, as the sandbox counts them."""
        store = getattr(getattr(self.server, "sandbox", None), "store", None)
        if store is not None and hasattr(store, "count"):
            return int(store.count(VIEW))
        return asked

    def stop(self) -> None:
        """Stop the running sandbox, if any."""
        if self.server is not None:
            self.server.stop()
            self.server = None
            gc.unfreeze()
            gc.collect()

    def measure(self, client: Client) -> Measurement:
        """Run the client once against the running sandbox."""
        assert self.sandbox is not None
        self.runs += 1
        tag = f"{self.runs:03d}-{client.key}-{self.view_rows}-{int(self.latency * 1000)}ms"
        work = Path(tempfile.mkdtemp(prefix=f"bench-{client.key}-"))
        try:
            argv = client.make(self.sandbox, work)
            env = {**os.environ, **client.env}
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env.setdefault("DLT_DATA_DIR", str(work / "dlt-data"))
            stderr_path = self.results / f"{tag}.stderr.log"
            self.server.clear_log()
            outcome = self.launcher.run(
                {
                    "argv": argv,
                    "env": env,
                    "stdout": None,
                    "stderr": str(stderr_path),
                    "cwd": str(work),
                    "timeout": timeout_for(self.view_rows, self.latency),
                }
            )
            token, discovery, data, served = classify(self.server.log)
            stderr = stderr_path.read_text(errors="replace").replace(
                self.sandbox.client_secret, "<client_secret>"
            )
            stderr_path.write_text(stderr)
            extract: dict[str, Any] = {}
            if (work / "dlt-result.json").exists():
                extract = json.loads((work / "dlt-result.json").read_text())
            measurement = Measurement(
                client=client.key,
                label=client.label,
                view_rows=self.view_rows,
                latency=self.latency,
                wall=outcome["wall"],
                cpu=outcome["user"] + outcome["sys"],
                peak_mb=outcome["max_rss_kb"] / 1024,
                exit_code=outcome["exit_code"],
                timed_out=outcome["timed_out"],
                rows=client.rows(work, stderr),
                token_calls=token,
                discovery_calls=discovery,
                data_calls=data,
                rows_served=served,
                extract_wall=extract.get("extract_wall"),
                extract_cpu=extract.get("extract_cpu"),
                warnings=len(re.findall(r"\b(?:WARNING|ERROR|CRITICAL)\b", stderr)),
                stderr_tail="\n".join(stderr.strip().splitlines()[-6:]),
            )
        finally:
            shutil.rmtree(work, ignore_errors=True)
        state = "ok" if measurement.complete else "INCOMPLETE"
        if measurement.timed_out:
            state = "TIMED OUT"
        elif measurement.exit_code != 0:
            state = f"FAILED (exit {measurement.exit_code})"
        self.log(
            f"  {client.label:<46} {measurement.rows or 0:>9,} rows  "
            f"{measurement.wall:7.1f} s wall  {measurement.cpu:7.1f} s CPU  "
            f"{measurement.peak_mb:6.0f} MB  calls {token}/{discovery}/{data}  {state}"
        )
        return measurement


# ----------------------------------------------------------------------------------------------
# Facts about the run
# ----------------------------------------------------------------------------------------------


def tap_huey_about() -> dict[str, Any]:
    """`tap-huey --about --format json`."""
    answer = subprocess.run(
        [str(VENV_BIN / "tap-huey"), "--about", "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return dict(json.loads(answer.stdout))


def package_version(python: Path, package: str) -> str:
    """A package's installed version in the environment of `python`."""
    answer = subprocess.run(
        [str(python), "-c", f"import importlib.metadata as m; print(m.version({package!r}))"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return answer.stdout.strip() or "not installed"


def git_revision() -> str:
    """The commit benchmarked, and whether the work tree differed from it."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "tap_huey", "huey_sandbox"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (" with uncommitted changes to tap_huey/ or huey_sandbox/" if dirty else "")


def machine() -> dict[str, str]:
    """The machine the numbers come from."""
    model = "unknown"
    memory = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.0f} GiB"
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "nproc": str(cores),
        "cpu": model,
        "memory": memory,
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()}",
    }


# ----------------------------------------------------------------------------------------------
# Report
# ----------------------------------------------------------------------------------------------


def fmt_rows(m: Measurement) -> str:
    """Rows delivered, flagged when short of the view."""
    if m.rows is None:
        return "unknown"
    text = f"{m.rows:,}"
    return text if m.rows == m.view_rows else f"**{text} of {m.view_rows:,}**"


def status_of(m: Measurement) -> str:
    """How the run ended."""
    if m.timed_out:
        return "timed out"
    if m.exit_code != 0:
        return f"failed (exit {m.exit_code})"
    if m.rows != m.view_rows:
        return "exit 0, rows missing"
    return "ok"


def results_table(runs: list[Measurement], with_bound: bool) -> list[str]:
    """A markdown table of runs against one sandbox."""
    header = (
        "| client | rows delivered | records/s (wall) | records/s (CPU) | CPU s | wall s "
        "| peak MB | token | discovery | data calls |"
    )
    rule = "|:--|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
    if with_bound:
        header += " wall ÷ bound |"
        rule += "--:|"
    header += " result |"
    rule += ":--|"
    lines = [header, rule]
    for m in runs:
        row = (
            f"| {m.label} | {fmt_rows(m)} | {m.per_wall:,.0f} | {m.per_cpu:,.0f} "
            f"| {spread(m.cpu, m.cpu_runs)} | {spread(m.wall, m.wall_runs)} | {m.peak_mb:.0f} "
            f"| {m.token_calls} | {m.discovery_calls} | {m.data_calls} |"
        )
        if with_bound:
            row += f" {m.wall / bound(m):.2f} |"
        row += f" {status_of(m)} |"
        lines.append(row)
    return lines


def bound(m: Measurement) -> float:
    """The sequential bound: pages x latency."""
    return math.ceil(m.view_rows / PAGE_SIZE) * m.latency


def ratio_lines(runs: list[Measurement], main: str, references: list[str]) -> list[str]:
    """tap-huey's records/s divided by each other client's, by CPU and by wall time."""
    by_key = {m.client: m for m in runs}
    ours = by_key.get(main)
    lines = [
        "| tap-huey ÷ | by CPU time | by wall time | note |",
        "|:--|--:|--:|:--|",
    ]
    if ours is None or not ours.complete:
        lines.append("| (tap-huey did not deliver every row: no ratios) | | | |")
        return lines
    for key in references:
        other = by_key.get(key)
        if other is None:
            continue
        if not other.complete:
            lines.append(
                f"| {other.label} | n/a | n/a | delivered {other.rows or 0:,} of "
                f"{other.view_rows:,} rows ({status_of(other)}): not comparable |"
            )
            continue
        cpu = ours.per_cpu / other.per_cpu
        wall = ours.per_wall / other.per_wall
        lines.append(f"| {other.label} | {cpu:.2f}x | {wall:.2f}x | |")
    return lines


def redacted(config: dict[str, Any], sandbox: Sandbox) -> str:
    """A config as JSON with the credentials and the sandbox's port replaced."""
    text = json.dumps(config, indent=2)
    text = text.replace(sandbox.client_secret, "<client_secret>")
    text = text.replace(sandbox.client_id, "<client_id>")
    return text.replace(sandbox.url, "http://127.0.0.1:<port>")


def runs_text(repeat: int) -> str:
    """'once', 'twice' or 'N times'."""
    return {1: "once", 2: "twice"}.get(repeat, f"{repeat} times")


def render_markdown(report: dict[str, Any]) -> str:
    """docs/benchmarks.md."""
    runs: dict[float, list[Measurement]] = report["runs"]
    main_rows: int = report["rows"]
    out: list[str] = []
    add = out.append
    add("# Benchmarks")
    add("")
    add(
        f"Written by `{report['command']}` on {report['date']}; "
        "`bench/README.md` says what it measures and how. Do not edit by hand: run it again."
    )
    add("")
    add("## Machine and versions")
    add("")
    m = report["machine"]
    add(f"- Machine: {m['nproc']} cores (`nproc`), {m['cpu']}, {m['memory']}, {m['os']}")
    add(f"- Python {m['python']}")
    add(
        "- Load average (1 min) when the run started and ended: "
        f"{report['load'][0]:.2f} and {report['load'][1]:.2f}. The numbers are only as quiet as "
        "the machine: other work on it during the run shows up as slower runs and wider ranges."
    )
    for name, version in report["versions"].items():
        add(f"- {name}: {version}")
    add("")
    add("## What was run")
    add("")
    add(
        f"The sandbox ran in the benchmark's process with {main_rows:,} rows in `{VIEW}`; each "
        f"client ran as its own process, {runs_text(report['repeat'])} per latency setting "
        "(round-robin; the run with the median wall time is shown, with the range of all runs "
        "in brackets), after one warm-up run of every client against a "
        f"{WARMUP_ROWS:,}-row sandbox. *records/s (wall)* is rows delivered ÷ wall "
        "time of the whole process (start-up included); *records/s (CPU)* is rows delivered ÷ "
        "its user + system CPU time; *peak MB* is its peak RSS; all from `os.wait4`. API calls "
        "come from the sandbox's request log: *token* calls to `/oauth/token`, *data calls* "
        "reads of a page (`/records` with `q.pageNumber`), *discovery* everything else (view "
        "list, field list, schema samples, counts). Singer output went to /dev/null; rows "
        "delivered are the taps' own `record_count` metrics, the floor's count, and dlt's "
        "extract metrics for the view's resource."
    )
    add("")
    for latency, title in (
        (0.0, "no added latency"),
        (LATENCY, f"{LATENCY * 1000:g} ms per request"),
    ):
        group = runs.get(latency)
        if not group:
            continue
        add(f"## {main_rows:,} rows, {title}")
        add("")
        if latency:
            pages = math.ceil(main_rows / PAGE_SIZE)
            add(
                f"Sequential bound: {pages} pages x {latency:g} s = {pages * latency:g} s. "
                "*wall ÷ bound* below 1 means requests overlapped; above 1, time spent beyond "
                "waiting for one page after another."
            )
            add("")
        out.extend(results_table(group, with_bound=bool(latency)))
        add("")
    add("## Ratios")
    add("")
    add(
        "tap-huey's records/s divided by the other client's (above 1: tap-huey is faster). "
        "By CPU time this is the other client's CPU seconds ÷ tap-huey's, for the same rows."
    )
    add("")
    for latency, group in runs.items():
        add(f"**{latency * 1000:g} ms latency**, tap-huey = {report['main_label']}:")
        add("")
        out.extend(ratio_lines(group, report["main_key"], report["reference_keys"]))
        add("")
    memory: list[Measurement] = report["memory"]
    if memory:
        add("## tap-huey's memory as the view grows")
        add("")
        add("| rows in view | peak MB | wall s | CPU s | records/s (wall) | result |")
        add("|--:|--:|--:|--:|--:|:--|")
        for mm in sorted(memory, key=lambda x: x.view_rows):
            add(
                f"| {mm.view_rows:,} | {mm.peak_mb:.0f} | {mm.wall:.1f} | {mm.cpu:.1f} "
                f"| {mm.per_wall:,.0f} | {status_of(mm)} |"
            )
        add("")
        add(report["memory_verdict"])
        add("")
    add("![records/s, CPU, peak memory](benchmarks.png)")
    add("")
    add("## How each client was configured")
    add("")
    for label, text in report["configs"]:
        add(f"**{label}**")
        add("")
        add("```json")
        add(text)
        add("```")
        add("")
    add(
        "tap-rest-api-msdk, as its README documents page-number paging, uses "
        "`page_number_paginator`, which asks for the next page only while "
        "`next_page_token_path` (default `hasMore`) finds a true value in the answer. Caspio's "
        "answer has no such field, so the tap reads one page and exits 0. The second "
        "configuration points `next_page_token_path` at `$.Result[999]`, the last record of a "
        "full page, which exists only when the page is full; a JSONPath trick, not a documented "
        "recipe. The tap also reads one page up front (without `q.pageNumber`) to infer the "
        "schema, counted under discovery."
    )
    add("")
    add(
        "dlt's `page_number` paginator with `total_path: null` stops at the first empty page "
        "(`stop_after_empty_page` defaults to true)."
    )
    add("")
    if report["notes"]:
        add("## Notes")
        add("")
        for note in report["notes"]:
            add(f"- {note}")
        add("")
    return "\n".join(out)


def render_plot(report: dict[str, Any], path: Path) -> None:
    """docs/benchmarks.png: throughput, CPU, memory by client, and tap-huey's memory by rows."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs: dict[float, list[Measurement]] = report["runs"]
    base = runs.get(0.0, [])
    labels = [m.label for m in base]
    short = [report["short"].get(label, label) for label in labels]
    figure, axes = plt.subplots(2, 2, figsize=(15, 10.5))
    colours = {0.0: "#4477aa", LATENCY: "#ee7733"}

    def bars(
        ax: Any,
        value: Callable[[Measurement], float],
        title: str,
        unit: str,
        fmt: str = ",.0f",
        span: Callable[[Measurement], tuple[float, float]] | None = None,
    ) -> None:
        width = 0.38
        for offset, latency in enumerate(sorted(runs)):
            group = {m.label: m for m in runs[latency]}
            xs, heights, hatches, low, high = [], [], [], [], []
            for index, label in enumerate(labels):
                m = group.get(label)
                if m is None:
                    continue
                xs.append(index + (offset - 0.5) * width)
                heights.append(value(m))
                hatches.append("" if m.complete else "//")
                lo, hi = span(m) if span is not None else (value(m), value(m))
                low.append(max(0.0, value(m) - lo))
                high.append(max(0.0, hi - value(m)))
            drawn = ax.bar(
                xs,
                heights,
                width,
                color=colours.get(latency, "#999999"),
                label=f"{latency * 1000:g} ms latency",
                yerr=[low, high] if span is not None else None,
                capsize=3 if span is not None else 0,
                error_kw={"elinewidth": 0.8, "ecolor": "#333333"},
            )
            for bar_, hatch, height, top in zip(drawn, hatches, heights, high, strict=True):
                bar_.set_hatch(hatch)
                ax.annotate(
                    format(height, fmt),
                    (bar_.get_x() + bar_.get_width() / 2, height + top),
                    ha="center",
                    va="bottom",
                    fontsize=7,
                )
        ax.set_xticks(range(len(labels)), short, fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.set_ylabel(unit)
        ax.legend(fontsize=8)
        ax.grid(axis="y", alpha=0.3)

    rows = report["rows"]
    repeat = report["repeat"]
    whiskers = f"; whiskers: range of {repeat} runs" if repeat > 1 else ""
    if LATENCY in runs:
        sequential = rows / (math.ceil(rows / PAGE_SIZE) * LATENCY)
        axes[0][0].axhline(
            sequential,
            linestyle="--",
            linewidth=1,
            color=colours[LATENCY],
            label=f"sequential bound at {LATENCY * 1000:g} ms",
        )
    bars(
        axes[0][0],
        lambda m: m.per_wall,
        f"Records per second of wall time, {rows:,} rows\n(hatched: did not deliver every "
        f"row{whiskers})",
        "records/s",
        span=lambda m: (
            (m.rows or 0) / max(m.wall_runs or [m.wall]),
            (m.rows or 0) / min(m.wall_runs or [m.wall]),
        ),
    )
    bars(
        axes[0][1],
        lambda m: m.cpu,
        f"CPU seconds (user + sys) of the client process{whiskers.replace(';', ',')}",
        "CPU s",
        ".1f",
        span=lambda m: (min(m.cpu_runs or [m.cpu]), max(m.cpu_runs or [m.cpu])),
    )
    bars(axes[1][0], lambda m: m.peak_mb, "Peak RSS of the client process", "MB")
    ax = axes[1][1]
    memory: list[Measurement] = sorted(report["memory"], key=lambda m: m.view_rows)
    if memory:
        ax.plot(
            [m.view_rows for m in memory],
            [m.peak_mb for m in memory],
            marker="o",
            color=colours[0.0],
            label=report["main_label"],
        )
        for m in memory:
            ax.annotate(f"{m.peak_mb:.0f} MB", (m.view_rows, m.peak_mb), fontsize=8, va="bottom")
        ax.set_ylim(bottom=0, top=max(m.peak_mb for m in memory) * 1.3)
        ax.set_xlim(left=0)
        ax.legend(fontsize=8)
    ax.set_title("tap-huey peak RSS as the view grows (no added latency)", fontsize=10)
    ax.set_xlabel("rows in view")
    ax.set_ylabel("MB")
    ax.grid(alpha=0.3)
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda x, _: f"{x:,.0f}"))
    figure.suptitle(
        f"tap-huey vs the floor, tap-rest-api-msdk and dlt: {VIEW}, {report['date']}, "
        f"{report['machine']['nproc']} cores",
        fontsize=12,
    )
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def print_tables(report: dict[str, Any]) -> None:
    """The results as plain text on stdout."""
    print()
    for latency, group in report["runs"].items():
        print(f"{report['rows']:,} rows, {latency * 1000:g} ms latency")
        head = (
            f"{'client':<46} {'rows':>9} {'rec/s wall':>11} {'rec/s CPU':>10} {'CPU s':>7} "
            f"{'wall s (range)':>19} {'peak MB':>8} {'tok/disc/data':>14}"
        )
        if latency:
            head += f" {'÷ bound':>8}"
        print(head)
        for m in group:
            calls = f"{m.token_calls}/{m.discovery_calls}/{m.data_calls}"
            line = (
                f"{m.label:<46} {m.rows or 0:>9,} {m.per_wall:>11,.0f} {m.per_cpu:>10,.0f} "
                f"{m.cpu:>7.1f} {spread(m.wall, m.wall_runs):>19} {m.peak_mb:>8.0f} {calls:>14}"
            )
            if latency:
                line += f" {m.wall / bound(m):>8.2f}"
            if not m.complete:
                line += f"  [{status_of(m)}]"
            print(line)
        print()
        for line in ratio_lines(group, report["main_key"], report["reference_keys"])[2:]:
            cells = [cell.strip() for cell in line.strip("|").split("|")]
            print(f"  tap-huey ÷ {cells[0]}: CPU {cells[1]}, wall {cells[2]} {cells[3]}")
        print()
    if report["memory"]:
        print("tap-huey peak RSS by rows in view:")
        for m in sorted(report["memory"], key=lambda x: x.view_rows):
            print(f"  {m.view_rows:>9,} rows: {m.peak_mb:6.0f} MB ({status_of(m)})")
        print(f"  {report['memory_verdict']}")


def memory_verdict(memory: list[Measurement]) -> str:
    """Whether tap-huey's peak RSS stayed flat as the view grew."""
    done = sorted((m for m in memory if m.complete), key=lambda m: m.view_rows)
    if len(done) < 2:
        return "Too few complete runs to judge how memory grows."
    small, large = done[0], done[-1]
    low = min(m.peak_mb for m in done)
    high = max(m.peak_mb for m in done)
    growth = large.peak_mb - small.peak_mb
    per_row = growth * 1024 * 1024 / (large.view_rows - small.view_rows)
    factor = large.view_rows / small.view_rows
    # Flat: the largest peak within a quarter of the smallest, across a view 4 to 10 times larger.
    # Below 200,000 rows the tap's fixed costs (imports, pages in flight) hide any growth.
    if large.view_rows < 200_000 or factor < 4:
        verdict = "views too small to judge (the full run compares 50,000 to 500,000 rows)"
    elif high <= low * 1.25:
        verdict = "flat"
    else:
        verdict = "NOT flat: it grows with the view"
    return (
        f"From {small.view_rows:,} to {large.view_rows:,} rows ({factor:g}x the rows) peak RSS "
        f"stayed between {low:.0f} and {high:.0f} MB; the largest view's peak is "
        f"{growth:+.0f} MB from the smallest's (about {per_row:,.0f} bytes per extra row): "
        f"{verdict}."
    )


# ----------------------------------------------------------------------------------------------
# Main
# ----------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Run every client against every setting and write the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="20,000 rows, one run each, memory at 10,000 and 50,000 rows (no 500,000 run)",
    )
    parser.add_argument("--rows", type=int, help="rows in the view (default 200,000)")
    parser.add_argument(
        "--out",
        type=Path,
        help="folder for benchmarks.md and .png (default docs/; bench/results/quick/ with --quick)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        help="runs of each client per latency; the median by wall time is reported "
        "(default 3; 1 with --quick)",
    )
    parser.add_argument("--command", default=None, help="the command line to quote in the report")
    args = parser.parse_args(argv)
    args.repeat = max(1, args.repeat or (1 if args.quick else 3))

    launcher = Launcher()
    load_at_start = os.getloadavg()[0]
    rows = args.rows or (20_000 if args.quick else 200_000)
    # tap-huey reads small views one page at a time, larger ones in parallel: the quick run's
    # sizes stay large enough for the parallel reader, so that they compare like with like.
    memory_sizes = [10_000, 50_000] if args.quick else [50_000, 500_000]
    out = args.out or (BENCH / "results" / "quick" if args.quick else ROOT / "docs")
    results = BENCH / "results" / dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    results.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()

    def log(message: str) -> None:
        print(f"[{time.monotonic() - started:6.0f} s] {message}", flush=True)

    venvs = BENCH / ".venvs"
    notes: list[str] = []
    about = tap_huey_about()
    settings = about.get("settings", {}).get("properties", {})
    clients: list[Client] = []
    if "max_parallel_requests" in settings:
        default = settings["max_parallel_requests"].get("default")
        main_client = tap_huey_client(
            None,
            f"tap-huey (max_parallel_requests={default})",
            f"tap-huey\n{default} in parallel",
            "tap-huey",
        )
        clients.append(main_client)
        clients.append(
            tap_huey_client(
                1, "tap-huey (max_parallel_requests=1)", "tap-huey\nsequential", "tap-huey-seq"
            )
        )
    else:
        main_client = tap_huey_client(None, "tap-huey", "tap-huey", "tap-huey")
        clients.append(main_client)
        notes.append(
            "tap-huey's `--about` lists no `max_parallel_requests` setting in this version, so it "
            "ran once per setting with its defaults (one request at a time)."
        )
    clients += [
        floor_client(),
        msdk_client(venvs / "tap-rest-api-msdk", fixed=False),
        msdk_client(venvs / "tap-rest-api-msdk", fixed=True),
        dlt_client(venvs / "dlt"),
    ]
    versions = {
        "tap-huey": f"{about.get('version', '?')} (git {git_revision()})",
        "singer-sdk (tap-huey)": package_version(VENV_BIN / "python", "singer-sdk"),
        "tap-rest-api-msdk": package_version(
            venvs / "tap-rest-api-msdk" / "bin" / "python", "tap-rest-api-msdk"
        ),
        "singer-sdk (tap-rest-api-msdk)": package_version(
            venvs / "tap-rest-api-msdk" / "bin" / "python", "singer-sdk"
        ),
        "dlt": package_version(venvs / "dlt" / "bin" / "python", "dlt"),
    }
    log("versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()))

    bench = Bench(launcher, results, log)
    all_runs: list[Measurement] = []
    raw_runs: list[Measurement] = []
    runs: dict[float, list[Measurement]] = {}
    memory: list[Measurement] = []
    configs: list[tuple[str, str]] = []
    try:
        bench.start(WARMUP_ROWS, 0.0)
        log("warm-up (not reported unless it fails):")
        assert bench.sandbox is not None
        for client in clients:
            warm = bench.measure(client)
            if warm.exit_code != 0 or warm.timed_out:
                notes.append(
                    f"Warm-up of {client.label} on {WARMUP_ROWS:,} rows: {status_of(warm)}: "
                    f"`{warm.stderr_tail.splitlines()[-1] if warm.stderr_tail else ''}`"
                )
            configs.append((client.label, redacted(client.config(bench.sandbox), bench.sandbox)))
        for latency in (0.0, LATENCY):
            bench.start(rows, latency)
            tries: dict[str, list[Measurement]] = {c.key: [] for c in clients}
            for number in range(1, args.repeat + 1):
                if args.repeat > 1:
                    log(f"round {number} of {args.repeat}:")
                for client in clients:
                    tries[client.key].append(bench.measure(client))
            group = [median_run(tries[c.key]) for c in clients]
            runs[latency] = group
            all_runs += group
            raw_runs += [m for ms in tries.values() for m in ms]
            if latency == 0.0:
                memory += [m for m in group if m.client == main_client.key]
        for size in memory_sizes:
            bench.start(size, 0.0)
            m = bench.measure(main_client)
            memory.append(m)
            all_runs.append(m)
            raw_runs.append(m)
    finally:
        bench.stop()
        launcher.close()

    for m in all_runs:
        pages = math.ceil(m.view_rows / PAGE_SIZE)
        if m.complete and m.data_calls > pages + 1:
            served = f"they were served {m.rows_served:,} rows in all"
            if m.rows_served == m.view_rows:
                served += ", so no row was read twice"
            notes.append(
                f"{m.label}, {m.view_rows:,} rows, {m.latency * 1000:g} ms: {m.data_calls} data "
                f"calls where {pages} full pages and one to see the end would do "
                f"({m.data_calls - pages - 1} more); {served}."
            )
        if m.rows is not None and m.rows != m.rows_served:
            notes.append(
                f"{m.label}, {m.view_rows:,} rows, {m.latency * 1000:g} ms: delivered "
                f"{m.rows:,} rows but its data calls were served {m.rows_served:,}."
            )
        if m.timed_out or m.exit_code != 0:
            notes.append(
                f"{m.label}, {m.view_rows:,} rows, {m.latency * 1000:g} ms: {status_of(m)} "
                f"after {m.wall:.0f} s, having delivered {m.rows or 0:,} rows. Its stderr ended: "
                f"`{' / '.join(m.stderr_tail.splitlines()[-2:])[:400]}`"
            )
        elif m.incomplete_runs and m.complete:
            notes.append(
                f"{m.label}, {m.view_rows:,} rows, {m.latency * 1000:g} ms: "
                f"{m.incomplete_runs} of {len(m.wall_runs)} runs did not deliver every row."
            )
        elif not m.complete:
            logged = (
                f"{m.warnings} WARNING/ERROR log lines"
                if m.warnings
                else "without logging a warning or an error"
            )
            notes.append(
                f"{m.label}, {m.view_rows:,} rows, {m.latency * 1000:g} ms: exited 0 after "
                f"delivering {m.rows or 0:,} of {m.view_rows:,} rows ({m.data_calls} data "
                f"call{'s' if m.data_calls != 1 else ''}), {logged}."
            )
        if m.extract_wall is not None:
            notes.append(
                f"dlt, {m.view_rows:,} rows, {m.latency * 1000:g} ms: `pipeline.extract()` alone "
                f"took {m.extract_wall:.1f} s wall and {m.extract_cpu or 0:.1f} s CPU of the "
                f"process's {m.wall:.1f} s and {m.cpu:.1f} s (the rest is importing dlt and "
                "building the pipeline)."
            )
    command = args.command or "python bench/compare.py " + shlex.join(argv or sys.argv[1:])
    report: dict[str, Any] = {
        "command": command.strip(),
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "load": (load_at_start, os.getloadavg()[0]),
        "versions": versions,
        "rows": rows,
        "repeat": args.repeat,
        "runs": runs,
        "memory": memory,
        "memory_verdict": memory_verdict(memory),
        "main_key": main_client.key,
        "main_label": main_client.label,
        "reference_keys": [c.key for c in clients if c.key != main_client.key],
        "configs": configs,
        "notes": notes,
        "short": {c.label: c.short for c in clients},
    }
    raw = {
        **report,
        "runs": [asdict(m) for m in all_runs],
        "every_run": [asdict(m) for m in raw_runs],
        "memory": [asdict(m) for m in memory],
    }
    (results / "results.json").write_text(json.dumps(raw, indent=2, default=str))
    (out / "benchmarks.md").write_text(render_markdown(report))
    render_plot(report, out / "benchmarks.png")
    print_tables(report)
    log(f"wrote {out / 'benchmarks.md'}, {out / 'benchmarks.png'} and {results}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
