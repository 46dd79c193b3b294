"""The FlowRun controller pays its one-time costs when it is built, not at a run's step.

Every run's end checks the pod's run summary against the FlowRun status schema
(:func:`~headwater_operator.flowruns.podfacts.summary_validator`), whose module brings a
CEL parser: imported at the first run's end, it held the event loop, and every other
run's next step, for tens of milliseconds (hundreds on a busy machine). A fresh
interpreter shows what building the controller loaded; this process has imported it all.
"""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import sys
from headwater_operator.controllers.flowruns import FlowRunController
from headwater_operator.informer import Store
from headwater_operator import kube
assert "headwater_operator.api.validation" not in sys.modules, "imported too early"

class Events:
    def post(self, *args): pass

FlowRunController(kube.Kube(), deployments=Store(), flows=Store(), events=Events())
print("headwater_operator.api.validation" in sys.modules)
"""


def test_building_the_controller_loads_the_run_summary_check() -> None:
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                          check=False, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True"
