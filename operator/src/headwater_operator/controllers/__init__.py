"""The operator's controllers: one per kind, each a work queue fed by shared informers.

* :mod:`.flowruns` — a FlowRun from its watch event to its pod and on to a final phase;
* :mod:`.schedules` — a Schedule's ticks, their FlowRuns, its status;
* :mod:`.deployments` — Deployment and Flow status, and FlowRun history pruning;
* :mod:`.manager` — the informers, stores and controllers of one leadership term;
* :mod:`.signals` — what the controllers report (metrics, Events), and to whom.

This layer sits between the pure domain (:mod:`headwater_operator.flowruns`,
:mod:`headwater_operator.scheduling`, …: decisions without I/O) and the application
(:mod:`headwater_operator.runner`: the process, kopf, leader election, metrics). It
reads and writes the API server only through :mod:`headwater_operator.kube`, and never
imports kopf or the metrics module (docs/architecture.md).
"""
