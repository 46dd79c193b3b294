"""headwater-dev: an in-process Kubernetes cluster for tests and the local sandbox.

* :mod:`.emulator` — the emulated API server (aiohttp), in the current event loop or in
  a background thread for synchronous callers; :mod:`.discovery` and :mod:`.openapi`
  render what it serves.
* :mod:`.store` — the object store with the API server's semantics, each kind's writes
  going through its strategy (:mod:`.strategies`, :mod:`.builtins`,
  :mod:`.apiextensions`, :mod:`.cel`), worded as Kubernetes words them
  (:mod:`.fielderrors`). What it checks, and what it does not: ``docs/emulator.md``.
* label and field selectors: :mod:`headwater_operator.selectors` (the operator's informer
  parses them too).
* :mod:`.resources` — the served kinds and their discovery information.
* :mod:`.podstatus` — pure builders of realistic pod statuses (Running, OOMKilled, …).
* :mod:`.kubelet` — a scriptable kubelet stand-in that drives pods through the API.
* :mod:`.harness` — the real operator as a task of the current loop, and ``wait_for``.
* :mod:`.faults` — a seeded fault plan: the 429s, 5xx, delays, resets and broken
  watches of a busy or restarting API server, injected into chosen requests.
* :mod:`.sandbox` — ``headwater dev``, registered through this distribution's own
  ``headwater.commands`` entry point; :mod:`.process_kubelet` runs its pods as processes.

Why this is a distribution and not a folder under ``tests/``: the api tests and the
sandbox must run the operator against exactly the same emulator, so a behaviour proven
by a test is the behaviour a developer sees locally. Why it is not part of
headwater-operator: the operator image must carry only the operator
(``docs/architecture.md``, "Distributions"). It depends on headwater-operator (the harness
runs the real operator); the operator never imports it (``.importlinter``,
``operator-without-dev``).
"""
