"""The FlowRun lifecycle as pure decisions; the kopf handlers only fetch facts and apply.

* :mod:`.settings` — FlowRun > Deployment > Flow precedence, parameter merge + validation.
* :mod:`.concurrency` — Enqueue / CancelNew slot verdicts.
* :mod:`.render` — :func:`render_pod`, the manifest of one attempt's pod.
* :mod:`.podfacts` — pod facts → what the attempt is doing (every Crashed reason).
* :mod:`.retry` — which outcomes are retried and when.
* :mod:`.machine` — :func:`decide`, the state machine that ties them together.

See docs/flowrun-lifecycle.md for the phase diagram and the reasons table.
"""
