"""kubectl 1.32 against the emulator, as a user drives it against ``headwater dev``.

The pinned kubectl (``scripts/install-helm.sh kubectl``) talks to a fresh emulator: it
discovers the API, downloads the OpenAPI v3 documents (``kubectl explain``, and the
``fieldValidation`` check behind ``kubectl apply``'s default ``--validate=strict``),
applies the examples as their kustomizations say, and gets refused — with the field
named — wherever a real API server refuses.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from headwater_dev.emulator import BackgroundEmulator
from pinned_tools import REPO_ROOT, pinned_tool

EXAMPLES = REPO_ROOT / "examples"


class Kubectl:
    """``kubectl`` with a kubeconfig for the emulator and a HOME of its own (caches)."""

    def __init__(self, binary: str, kubeconfig: Path, home: Path) -> None:
        self.binary = binary
        self.env = {"KUBECONFIG": str(kubeconfig), "HOME": str(home), "PATH": "/usr/bin:/bin"}

    def __call__(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([self.binary, *args], env=self.env, input=stdin,
                              capture_output=True, text=True, timeout=60, check=False)

    def ok(self, *args: str, stdin: str | None = None) -> str:
        proc = self(*args, stdin=stdin)
        assert proc.returncode == 0, f"kubectl {' '.join(args)}:\n{proc.stderr}"
        return proc.stdout


@pytest.fixture(scope="module")
def kubectl_binary() -> str:
    return pinned_tool("kubectl")


@pytest.fixture
def kubectl(kubectl_binary: str, tmp_path: Path) -> Iterator[Kubectl]:
    with BackgroundEmulator() as api:
        yield Kubectl(kubectl_binary, api.kubeconfig_path, tmp_path)


def test_the_api_is_discovered_with_our_kinds_short_names_and_category(
        kubectl: Kubectl) -> None:
    resources = kubectl.ok("api-resources", "--api-group=headwater.dev", "-o", "name")
    assert set(resources.split()) == {"flows.headwater.dev", "deployments.headwater.dev",
                                      "schedules.headwater.dev", "flowruns.headwater.dev",
                                      "blocks.headwater.dev", "variables.headwater.dev",
                                      "concurrencylimits.headwater.dev",
                                      "automations.headwater.dev"}
    crds = kubectl.ok("get", "crds", "-o", "name")
    assert "customresourcedefinition.apiextensions.k8s.io/flows.headwater.dev" in crds
    established = kubectl.ok("get", "crd", "flowruns.headwater.dev", "-o",
                             "jsonpath={.status.conditions[?(@.type=='Established')].status}")
    assert established == "True"


def test_the_examples_apply_as_their_kustomizations_say(kubectl: Kubectl) -> None:
    for example in ("quickstart", "pipeline", "assets", "blocks", "concurrency"):
        out = kubectl.ok("apply", "-k", str(EXAMPLES / example))
        assert "created" in out
    limits = kubectl.ok("get", "hwcl", "--sort-by=.metadata.name").splitlines()
    assert limits[0].split() == ["NAME", "LIMIT", "DECAY", "AGE"]
    assert [row.split()[:2] for row in limits[1:]] == [["github-api", "10"],
                                                        ["warehouse", "2"]]
    assert limits[1].split()[2] == "2"  # the rate limit's decay
    blocks = kubectl.ok("get", "blocks")
    assert blocks.splitlines()[0].split() == ["NAME", "TYPE", "AGE"]
    assert "examples.flows.warehouse:Warehouse" in blocks
    # The Secret the example ships holds its value as data, never stringData.
    secret = kubectl.ok("get", "secret", "warehouse-creds-block", "-o",
                        "jsonpath={.data.password}")
    assert secret == "ZXhhbXBsZS1vbmx5"  # base64 of "example-only"
    # The ad-hoc runs use generateName, so `kubectl create`, as the examples say.
    created = kubectl.ok("create", "-f", str(EXAMPLES / "quickstart" / "flowrun.yaml"))
    assert created.startswith("flowrun.headwater.dev/hello-")
    listed = kubectl.ok("get", "headwater", "-o", "name")
    assert "flow.headwater.dev/hello" in listed
    assert "schedule.headwater.dev/hello-every-15m" in listed
    # Applying again changes nothing (a three-way merge patch with nothing in it).
    again = kubectl.ok("apply", "-k", str(EXAMPLES / "quickstart"))
    assert "unchanged" in again


def test_explain_documents_the_fields(kubectl: Kubectl) -> None:
    spec = kubectl.ok("explain", "flow.spec")
    assert "KIND:       Flow" in spec
    assert "entrypoint\t<string> -required-" in spec
    assert "image\t<string> -required-" in spec
    phase = kubectl.ok("explain", "flowrun.status.phase")
    assert "FIELD: phase <string>" in phase
    metadata = kubectl.ok("explain", "schedule.metadata.name")
    assert "FIELD: name <string>" in metadata


def test_a_server_dry_run_creates_nothing(kubectl: Kubectl) -> None:
    out = kubectl.ok("apply", "--dry-run=server", "-f", str(EXAMPLES / "quickstart" / "flow.yaml"))
    assert out.strip() == "flow.headwater.dev/hello created (server dry run)"
    assert kubectl.ok("get", "flows", "-o", "name").strip() == ""


BAD_FLOW = """\
apiVersion: headwater.dev/v1alpha1
kind: Flow
metadata: {{name: hello}}
spec:
  image: ghcr.io/acme/flows:1
  entrypoint: flows/hello.py:hello
  {field}
"""


def test_an_unknown_field_is_refused_by_name(kubectl: Kubectl) -> None:
    proc = kubectl("apply", "-f", "-", stdin=BAD_FLOW.format(field="retrys: 3"))
    assert proc.returncode != 0
    assert 'unknown field "spec.retrys"' in proc.stderr
    assert kubectl.ok("get", "flows", "-o", "name").strip() == ""


def test_a_wrong_type_is_refused_by_name(kubectl: Kubectl) -> None:
    proc = kubectl("apply", "-f", "-", stdin=BAD_FLOW.format(field="retries: three"))
    assert proc.returncode != 0
    assert ('spec.retries: Invalid value: "string": spec.retries in body must be of type '
            'integer: "string"') in proc.stderr


def test_a_broken_cel_rule_is_refused_with_its_message(kubectl: Kubectl) -> None:
    schedule = """\
apiVersion: headwater.dev/v1alpha1
kind: Schedule
metadata: {name: both}
spec:
  deploymentRef: {name: hello}
  cron: "0 6 * * *"
  interval: 1h
"""
    proc = kubectl("apply", "-f", "-", stdin=schedule)
    assert proc.returncode != 0
    # kubectl prints a 422 as "The <Kind> <name> is invalid: <causes>".
    assert proc.stderr.strip() == ('The Schedule "both" is invalid: spec: Invalid value: '
                                   '"object": set exactly one of spec.cron, spec.interval or '
                                   "spec.rrule")
