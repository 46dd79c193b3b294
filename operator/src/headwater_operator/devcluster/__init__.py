"""An in-process Kubernetes cluster for tests and the local sandbox (``headwater dev``).

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

Why this lives in the package and not under ``tests/``: the api tests and the sandbox
must run the operator against exactly the same emulator, so a behaviour proven by a
test is the behaviour a developer sees locally. It needs the ``dev`` extra (``pip install
headwater-operator[dev]``: the CEL checker, RE2); the operator itself never imports this
package.
"""
