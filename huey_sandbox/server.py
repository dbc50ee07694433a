"""Start the sandbox on a free port in a background thread, for tests and benchmarks."""

from __future__ import annotations

import asyncio
import secrets
import threading
from typing import Any

from aiohttp import web

from huey_sandbox.app import Sandbox, build_app
from huey_sandbox.data import Row
from huey_sandbox.faults import Faults, ScriptedFault
from huey_sandbox.store import Store

V3 = "/integrations/rest/v3"
V2 = "/rest/v2"


class SandboxServer:
    """A running sandbox: its URL, credentials, ground truth, request log and faults.

    Use it as a context manager, or call `start()` and `stop()`.

    Args:
        rows: rows of the largest view (providers); the other views scale with it.
        seed: the seed every generated value follows.
        host: the address to listen on.
        port: the port; 0 picks a free one.
        faults: fault settings; they may also be changed while the server runs.
        client_id: the accepted client id; random when not given.
        client_secret: the accepted client secret; random when not given.
    """

    def __init__(
        self,
        rows: int = 1000,
        seed: int = 7,
        host: str = "127.0.0.1",
        port: int = 0,
        faults: Faults | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
    ) -> None:
        self.host = host
        self.requested_port = port
        self.port = 0
        self.sandbox = Sandbox(
            store=Store(rows, seed),
            client_id=client_id or f"huey-sandbox-{secrets.token_hex(6)}",
            client_secret=client_secret or secrets.token_urlsafe(24),
            faults=faults or Faults(seed=seed),
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The integration URL, as Caspio names `https://<account>.caspio.com`."""
        return f"http://{self.host}:{self.port}"

    @property
    def client_id(self) -> str:
        """A client id the token endpoint accepts."""
        return self.sandbox.client_id

    @property
    def client_secret(self) -> str:
        """The secret that goes with `client_id`."""
        return self.sandbox.client_secret

    @property
    def faults(self) -> Faults:
        """The live fault settings."""
        return self.sandbox.faults

    @property
    def log(self) -> list[dict[str, Any]]:
        """Every request so far: method, path, query, status, credential style, fault."""
        with self.sandbox.lock:
            return [dict(entry) for entry in self.sandbox.log]

    @property
    def token_calls(self) -> int:
        """How many requests reached the token endpoint."""
        return self.sandbox.token_calls

    def data_log(self, view: str | None = None) -> list[dict[str, Any]]:
        """The logged records requests, optionally for one view."""
        return [
            entry
            for entry in self.log
            if entry["path"].endswith("/records") and (view is None or entry.get("view") == view)
        ]

    def clear_log(self) -> None:
        """Forget the requests logged so far."""
        with self.sandbox.lock:
            self.sandbox.log.clear()
            self.sandbox.token_calls = 0

    def views(self) -> list[str]:
        """Every view name, in its defined case."""
        return self.sandbox.store.view_names

    def rows(self, view: str) -> list[Row]:
        """A view's current rows, exactly as `q.select=*` returns them (ground truth)."""
        return self.sandbox.store.rows(view)

    def key_of(self, view: str) -> str:
        """The view's unique key field, or `PK_ID` for a join view."""
        return self.sandbox.store.key_of(view)

    def fields(self, view: str) -> list[dict[str, Any]]:
        """The view's field metadata as the v3 fields endpoint returns it."""
        table = self.sandbox.store.table(view)
        assert table is not None
        return [f.metadata(n) for n, f in enumerate(table.view.fields, start=1)]

    def insert(self, view: str, count: int) -> list[Any]:
        """Insert rows with new keys; returns the keys."""
        return self.sandbox.store.insert(view, count)

    def delete(self, view: str, keys: list[Any]) -> None:
        """Delete rows by key."""
        self.sandbox.store.delete(view, keys)

    def update(self, view: str, key: Any, changes: Row | None = None) -> Row:
        """Change a row as a person editing it would; its OnUpdate timestamps move to now."""
        return self.sandbox.store.update(view, key, changes)

    @property
    def mutations(self) -> Any:
        """Keys inserted and deleted since start, per view."""
        return self.sandbox.store.mutations

    def script(self, kind: str, **options: Any) -> None:
        """Queue a fault for upcoming requests; see `ScriptedFault` for the options."""
        self.faults.script(ScriptedFault(kind, **options))

    def revoke_tokens(self) -> None:
        """Make every access token issued so far invalid."""
        self.sandbox.revoke_tokens()

    def start(self) -> SandboxServer:
        """Serve in a background thread; returns once the port is bound."""
        self._thread = threading.Thread(target=self._serve, name="huey-sandbox", daemon=True)
        self._thread.start()
        self._started.wait(30)
        if self._error is not None:
            raise RuntimeError(f"sandbox failed to start: {self._error}") from self._error
        return self

    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._bind())
        except BaseException as error:
            self._error = error
            self._started.set()
            return
        self._started.set()
        loop.run_forever()
        loop.run_until_complete(self._shutdown())
        loop.close()

    async def _bind(self) -> None:
        self._runner = web.AppRunner(build_app(self.sandbox), access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.requested_port)
        await site.start()
        sockets = site._server.sockets if site._server else []  # type: ignore[attr-defined]
        self.port = sockets[0].getsockname()[1]

    async def _shutdown(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def stop(self) -> None:
        """Stop serving and wait for the thread to end."""
        if self._loop is not None and self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(30)
