"""The web UI (``headwater ui``): runs, task runs, logs, artifacts, lineage, schedules.

An ``aiohttp`` application (:func:`~headwater_operator.ui.app.create_app`) that renders
HTML on the server from watch-backed stores (:mod:`.state`) and the run store, pushes
changes to browsers as server-sent events, and makes writes with the identity
:mod:`.auth` decides. The design, URLs and modes: docs/ui.md.

What it must respect: it is the application layer (beside ``cli``); nothing below
imports it. No JavaScript build and no external asset: everything is served from
``ui/static``.
"""
