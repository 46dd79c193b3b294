"""The operator's probe endpoints: ``/healthz`` (alive) and ``/readyz`` (serving).

The operator is *alive* as soon as its event loop runs, and *ready* only once it serves
Headwater's resources: its four CRDs are served by the API server and its controllers
have listed what exists — or, with leader election, once it stands by ready to take
over (a standby is ready: a rolling update must be able to go on while another replica
leads; ``/readyz`` says ``ok (standby)`` or ``ok (leader)``).
Before that — the CRDs not installed yet (``crds.install=false``, a GitOps sync wave that
applies them later) — ``/readyz`` answers 503 saying what it waits for, while ``/healthz``
keeps answering 200 so the kubelet does not restart a pod that is only waiting.
"""

from __future__ import annotations

import aiohttp.web

HEALTHZ = "/healthz"
READYZ = "/readyz"


class HealthServer:
    """A small HTTP server for the kubelet's probes (start it inside the event loop)."""

    def __init__(self, port: int, host: str = "0.0.0.0") -> None:
        self.port = port
        self.host = host
        self.waiting_for = "starting"
        """Why the operator is not ready yet (empty once ready)."""
        self.role = ""
        """``leader`` or ``standby`` with leader election (shown on ``/readyz``)."""
        self._runner: aiohttp.web.AppRunner | None = None

    def ready(self) -> None:
        """From now on ``/readyz`` answers 200."""
        self.waiting_for = ""

    async def _healthz(self, request: aiohttp.web.Request) -> aiohttp.web.Response:
        return aiohttp.web.Response(text="ok")

    async def _readyz(self, request: aiohttp.web.Request) -> aiohttp.web.Response:
        if self.waiting_for:
            return aiohttp.web.Response(status=503, text=f"not ready: {self.waiting_for}")
        return aiohttp.web.Response(text=f"ok ({self.role})" if self.role else "ok")

    async def start(self) -> None:
        """Listen on the port."""
        app = aiohttp.web.Application()
        app.add_routes([aiohttp.web.get(HEALTHZ, self._healthz),
                        aiohttp.web.get(READYZ, self._readyz)])
        self._runner = aiohttp.web.AppRunner(app, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        await aiohttp.web.TCPSite(self._runner, self.host, self.port).start()

    async def stop(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


__all__ = ["HEALTHZ", "READYZ", "HealthServer"]
