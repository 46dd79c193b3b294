"""``/schedules``: the Schedules the UI's watches know, from the store.

The Schedule page (next fire times, missed ticks, calendar, Suspend/Resume) is built on
this module (docs/ui.md). What it must respect: reads come from the store only.
"""

from __future__ import annotations

from aiohttp import web

from headwater_operator.cli.get import schedule_expression
from headwater_operator.ui.app import state_of
from headwater_operator.ui.pages import object_table


async def schedules_index(request: web.Request) -> web.Response:
    state = state_of(request)
    rows = []
    for (namespace, name), schedule in sorted(state.schedules.items()):
        spec = schedule.get("spec") or {}
        status = schedule.get("status") or {}
        rows.append([name, namespace,
                     str((spec.get("deploymentRef") or {}).get("name") or ""),
                     schedule_expression(schedule), str(spec.get("timezone") or "UTC"),
                     "suspended" if spec.get("suspend") else "active",
                     str(status.get("lastScheduleTime") or "")])
    return object_table(request, title="Schedules",
                        headers=("Name", "Namespace", "Deployment", "Expression", "Timezone",
                                 "State", "Last tick"), rows=rows,
                        empty="No Schedules in the namespaces this UI watches.",
                        testid="schedule-row")


def setup(app: web.Application) -> None:
    app.router.add_get("/schedules", schedules_index)
