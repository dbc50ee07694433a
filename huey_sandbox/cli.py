"""`huey-sandbox serve`: run the sandbox from the command line."""

from __future__ import annotations

import argparse
import gc
import json
import signal
import sys
import threading
import time

from huey_sandbox.faults import Faults
from huey_sandbox.server import V2, V3, SandboxServer


def parser() -> argparse.ArgumentParser:
    """The command line."""
    root = argparse.ArgumentParser(
        prog="huey-sandbox", description="A local Caspio REST API with synthetic Huey data."
    )
    commands = root.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the sandbox until interrupted")
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)"
    )
    serve.add_argument("--port", type=int, default=0, help="port; 0 picks a free one (default 0)")
    serve.add_argument(
        "--rows", type=int, default=5000, help="rows of the largest view (default 5000)"
    )
    serve.add_argument("--seed", type=int, default=7, help="seed of the synthetic data (default 7)")
    serve.add_argument("--client-id", help="client id to accept (default: random)")
    serve.add_argument("--client-secret", help="client secret to accept (default: random)")
    faults = serve.add_argument_group("faults")
    faults.add_argument("--latency", type=float, default=0.0, help="seconds added to every request")
    faults.add_argument(
        "--rate-limit", type=int, default=0, help="requests allowed per second; 0 = no limit"
    )
    faults.add_argument("--rate-limit-status", type=int, default=429, choices=(429, 400))
    faults.add_argument(
        "--retry-after", type=float, default=None, help="Retry-After seconds on rate-limit answers"
    )
    faults.add_argument(
        "--error-rate",
        type=float,
        default=0.0,
        help="share of data requests answered 500/503 (HTML)",
    )
    faults.add_argument(
        "--drop-rate", type=float, default=0.0, help="share of data requests whose connection drops"
    )
    faults.add_argument(
        "--truncate-rate", type=float, default=0.0, help="share of data responses cut short"
    )
    faults.add_argument(
        "--token-lifetime", type=int, default=86399, help="access token lifetime in seconds"
    )
    faults.add_argument(
        "--revoke-after", type=int, default=0, help="revoke a token after N data requests"
    )
    faults.add_argument(
        "--stale-token-400",
        action="store_true",
        help="answer a stale token with 400 IncorrectQueryParameter",
    )
    faults.add_argument(
        "--mutate-view",
        default="",
        help="view to insert into and delete from between page requests",
    )
    faults.add_argument(
        "--mutate-inserts", type=int, default=0, help="rows inserted after each page request"
    )
    faults.add_argument(
        "--mutate-deletes", type=int, default=0, help="rows deleted after each page request"
    )
    faults.add_argument(
        "--ignore-paging", action="store_true", help="answer every page with the first one"
    )
    faults.add_argument(
        "--forbid-view",
        action="append",
        default=[],
        help="a view the profile may list but not read",
    )
    return root


def main(argv: list[str] | None = None) -> int:
    """Run the command; `serve` prints one JSON line and serves until Ctrl-C."""
    args = parser().parse_args(argv)
    faults = Faults(
        latency=args.latency,
        rate_limit=args.rate_limit,
        rate_limit_status=args.rate_limit_status,
        rate_limit_retry_after=args.retry_after,
        error_rate=args.error_rate,
        drop_rate=args.drop_rate,
        truncate_rate=args.truncate_rate,
        token_lifetime=args.token_lifetime,
        revoke_after=args.revoke_after,
        stale_token_status=400 if args.stale_token_400 else 401,
        mutate_view=args.mutate_view,
        mutate_inserts=args.mutate_inserts,
        mutate_deletes=args.mutate_deletes,
        ignore_paging=args.ignore_paging,
        forbidden_views=set(args.forbid_view),
        seed=args.seed,
    )
    started = time.monotonic()
    server = SandboxServer(
        rows=args.rows,
        seed=args.seed,
        host=args.host,
        port=args.port,
        faults=faults,
        client_id=args.client_id,
        client_secret=args.client_secret,
    ).start()
    # The rows live as long as the process: keep the cyclic collector from walking them again.
    gc.freeze()
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    announcement = {
        "url": server.url,
        "v3": server.url + V3,
        "v2": server.url + V2,
        "token_url": server.url + "/oauth/token",
        "client_id": server.client_id,
        "client_secret": server.client_secret,
        "views": {name: server.sandbox.store.count(name) for name in server.views()},
        "startup_seconds": round(time.monotonic() - started, 2),
    }
    print(json.dumps(announcement), flush=True)
    stop.wait()
    server.stop()
    print("huey-sandbox stopped", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
