"""Fixtures for the real-cluster e2e tests (opt-in: ``HEADWATER_E2E=1``).

They talk to whatever ``kubectl`` talks to (``$KUBECONFIG``, current context), exactly as
a user would, and expect the chart to be installed already (``scripts/e2e-kind.sh`` does
that on kind). Settings, all environment variables:

* ``HEADWATER_E2E=1`` — run at all (otherwise every test is skipped);
* ``HEADWATER_E2E_NAMESPACE`` — where the examples go (default ``headwater-e2e``; created,
  and deleted afterwards unless ``HEADWATER_E2E_KEEP=1``);
* ``HEADWATER_E2E_OPERATOR_NAMESPACE`` — where the chart runs (default ``headwater-system``);
* ``HEADWATER_E2E_FLOW_IMAGE`` — the image with the example flows, replacing every Flow's
  ``spec.image`` (default ``headwater/examples:e2e``, what the script builds);
* ``HEADWATER_E2E_DBT_IMAGE`` — the image of the dbt example (examples/dbt/Dockerfile;
  default ``headwater/examples-dbt:e2e``);
* ``HEADWATER_E2E_TIMEOUT`` — seconds to wait for runs (default 300).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from .headwater_e2e import Kubectl

E2E = os.environ.get("HEADWATER_E2E") == "1"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test here ``e2e`` and skip it unless the run opted in."""
    skip = pytest.mark.skip(reason="real-cluster e2e: set HEADWATER_E2E=1 (see docs/e2e.md)")
    for item in items:
        if Path(str(item.fspath)).is_relative_to(Path(__file__).parent):
            item.add_marker(pytest.mark.e2e)
            if not E2E:
                item.add_marker(skip)


@pytest.fixture(scope="session")
def timeout() -> float:
    """How long to wait for runs to finish."""
    return float(os.environ.get("HEADWATER_E2E_TIMEOUT", "300"))


@pytest.fixture(scope="session")
def kubectl() -> Iterator[Kubectl]:
    """kubectl in a fresh test namespace (deleted at the end unless HEADWATER_E2E_KEEP=1)."""
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not on PATH")
    namespace = os.environ.get("HEADWATER_E2E_NAMESPACE", "headwater-e2e")
    client = Kubectl(namespace)
    probe = client("version", "--request-timeout=10s", namespaced=False, check=False)
    if "Server Version" not in probe:
        pytest.skip("no reachable cluster: check $KUBECONFIG / `kubectl cluster-info`")
    client("create", "namespace", namespace, namespaced=False, check=False)
    yield client
    if os.environ.get("HEADWATER_E2E_KEEP") != "1":
        client("delete", "namespace", namespace, "--wait=false", namespaced=False,
               check=False)


@pytest.fixture(scope="session")
def flow_image() -> str:
    """The image holding ``examples/flows`` (see scripts/e2e-kind.sh)."""
    return os.environ.get("HEADWATER_E2E_FLOW_IMAGE", "headwater/examples:e2e")


@pytest.fixture(scope="session")
def dbt_image() -> str:
    """The image holding headwater-dbt and ``examples/dbt`` (see scripts/e2e-kind.sh)."""
    return os.environ.get("HEADWATER_E2E_DBT_IMAGE", "headwater/examples-dbt:e2e")
