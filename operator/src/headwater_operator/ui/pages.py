"""Lists the other page modules build on: one table of a kind's objects from its store.

:func:`object_table` renders ``list.html`` (a title, headers and rows of cells, each
cell text or a link) so ``/deployments``, ``/schedules``, ``/flows`` and ``/assets``
share one accessible table. What it must respect: cells are text (autoescaped);
a link cell is ``(text, href)`` with an ``href`` built by the server from names.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aiohttp import web

from headwater_operator.ui.app import render

Cell = str | tuple[str, str]
"""Text, or (text, href)."""


def object_table(request: web.Request, *, title: str, headers: Sequence[str],
                 rows: Sequence[Sequence[Cell]], empty: str, testid: str,
                 **context: Any) -> web.Response:
    """A page with one table; ``testid`` names each row (``data-testid``)."""
    return render(request, "list.html", title=title, headers=list(headers),
                  rows=[[cell if isinstance(cell, tuple) else (cell, "") for cell in row]
                        for row in rows], empty=empty, testid=testid, **context)


def namespace_filter(request: web.Request) -> str:
    """The ``namespace`` query parameter ('' for all)."""
    return str(request.query.get("namespace") or "").strip()
