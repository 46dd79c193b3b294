"""The web UI inside ``headwater dev`` (``--ui``, on unless ``--until-complete``).

:class:`SandboxUi` serves :func:`headwater_operator.ui.app.create_app` in the sandbox's
own event loop, in local mode: it reads and writes with the sandbox's kubeconfig (the
:mod:`headwater_operator.kube` client :class:`~headwater_dev.sandbox.Sandbox` configured),
watching the namespaces the operator watches. It binds to 127.0.0.1 only, on the port
asked for or a free one, and says where in the banner (``UI: http://127.0.0.1:P/runs``).

What it must respect: it is started after the operator and stopped before it, so the
page never outlives the API it reads; it never binds beyond the loopback address (the
sandbox has no authentication beyond the local user).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

ADDRESS = "127.0.0.1"


class SandboxUi:
    """``await ui.start()`` → ``ui.url``; ``await ui.stop()``."""

    def __init__(self, namespaces: Sequence[str], port: int = 0) -> None:
        self.namespaces = list(namespaces)
        self.port = port
        self.url: str | None = None
        """``http://127.0.0.1:<port>`` once started."""
        self._runner: Any = None

    async def start(self) -> str:
        """Serve the UI; return its base URL."""
        from aiohttp import web
        from headwater_operator.ui.app import UiOptions, create_app

        options = UiOptions(address=ADDRESS, port=self.port, namespaces=self.namespaces)
        runner = web.AppRunner(create_app(options), handle_signals=False)
        await runner.setup()
        self._runner = runner
        site = web.TCPSite(runner, ADDRESS, self.port)
        await site.start()
        port = runner.addresses[0][1]
        options.url = self.url = f"http://{ADDRESS}:{port}"
        return self.url

    async def stop(self) -> None:
        """Close the server and its watches (a no-op when it never started)."""
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()
