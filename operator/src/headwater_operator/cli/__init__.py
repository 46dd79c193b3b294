"""The operator-side commands of ``headwater`` / ``kubectl headwater``.

``headwater.cli`` (the SDK's console script) loads :func:`register` through the
``headwater.commands`` entry point, so the SDK never imports the operator by name:

* :mod:`.run` — ``run <deployment>``: an ad-hoc FlowRun, ``--wait``/``--follow``;
* :mod:`.backfill` — ``backfill <schedule> --start --end``: the scheduler's runs for a
  past window, idempotent;
* :mod:`.get` — ``get runs|deployments|schedules|flows``;
* :mod:`.describe` — ``describe run <name>`` (with the task runs from the run store);
* :mod:`.logs` — ``logs <run> [-f]`` (the pod, else the run store) and ``cancel <run>``;
* :mod:`.artifacts` — ``artifacts <run>``: the artifacts in the run record;
* :mod:`.lineage` — ``lineage <asset key>``: upstream, downstream, materializations;
* :mod:`.preview` — ``schedule preview -f schedule.yaml`` (offline).

The parsers live in :mod:`.parsers`, which imports a command's module only when it
runs (a fast ``headwater --help``). Shared pieces: :mod:`.common` (options, connection,
exit codes, error reporting), :mod:`.store` (reading the run store, its errors in
words), :mod:`.output` (tables, JSON, YAML), :mod:`.params`
(``-p``/``--params-file`` and their validation), :mod:`.follow` (waiting and log
streaming). The user guide is docs/cli.md.
"""

from __future__ import annotations

from headwater_operator.cli.parsers import register

__all__ = ["register"]
