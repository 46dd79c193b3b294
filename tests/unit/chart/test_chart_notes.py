"""NOTES.txt tells the user the next step, for the mode they installed.

`helm template` does not render NOTES.txt and `helm install --dry-run` needs a cluster,
so the test renders the real NOTES.txt through `tpl` in a throwaway copy of the chart.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from chartkit import CHART_DIR, NAMESPACE, RELEASE


@pytest.fixture(scope="module")
def notes_chart(tmp_path_factory: pytest.TempPathFactory) -> Path:
    chart = tmp_path_factory.mktemp("notes") / "headwater"
    shutil.copytree(CHART_DIR, chart)
    shutil.copy(CHART_DIR / "templates" / "NOTES.txt", chart / "files" / "NOTES.txt")
    (chart / "templates" / "zz-notes.yaml").write_text(
        'notes: {{ tpl (.Files.Get "files/NOTES.txt") . | toJson }}\n'
    )
    return chart


def _notes(helm: str, chart: Path, values: dict[str, Any], tmp_path: Path) -> str:
    values_file = tmp_path / "values.json"
    values_file.write_text(json.dumps(values))
    proc = subprocess.run(
        [
            helm,
            "template",
            RELEASE,
            str(chart),
            "-n",
            NAMESPACE,
            "-f",
            str(values_file),
            "--show-only",
            "templates/zz-notes.yaml",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    notes: str = yaml.safe_load(proc.stdout)["notes"]
    return notes


def test_notes_point_to_the_quickstart_and_kubectl_get_headwater(
    helm: str, notes_chart: Path, tmp_path: Path
) -> None:
    notes = _notes(helm, notes_chart, {}, tmp_path)
    assert "kubectl apply -k examples/quickstart" in notes
    assert "kubectl get headwater -A" in notes
    assert f"rollout status deployment/{RELEASE}-headwater" in notes
    assert "every namespace" in notes
    assert "CRDs were NOT installed" not in notes


def test_namespaced_notes_name_the_watched_namespace(
    helm: str, notes_chart: Path, tmp_path: Path
) -> None:
    notes = _notes(
        helm,
        notes_chart,
        {
            "watchNamespaces": ["team-a", "team-b"],
            "replicas": 2,
            "crds": {"install": False, "keep": True},
        },
        tmp_path,
    )
    assert "these namespaces: team-a, team-b" in notes
    assert "kubectl apply -k examples/quickstart -n team-a" in notes
    assert "kubectl get headwater -n team-a" in notes
    assert "2 replicas: the holder of the Lease hw-headwater leads" in notes
    assert "kubectl -n headwater-system get lease hw-headwater" in notes
    assert "CRDs were NOT installed" in notes


def test_notes_say_where_the_ui_is_only_when_it_is_enabled(
    helm: str, notes_chart: Path, tmp_path: Path
) -> None:
    assert "UI" not in _notes(helm, notes_chart, {}, tmp_path)
    notes = _notes(helm, notes_chart, {"ui": {"enabled": True}}, tmp_path)
    assert "UI (read-only):" in notes
    assert (f"kubectl -n {NAMESPACE} port-forward service/{RELEASE}-headwater-ui 8090:80"
            in notes)
    assert "token" not in notes


def test_client_mode_notes_explain_the_login_and_warn_without_tls(
    helm: str, notes_chart: Path, tmp_path: Path
) -> None:
    plain = {"ui": {"enabled": True, "auth": "client",
                    "ingress": {"enabled": True, "host": "hw.example.com"}}}
    notes = _notes(helm, notes_chart, plain, tmp_path)
    assert "writes with the token each user logs in with" in notes
    assert "http://hw.example.com" in notes
    assert "kubectl -n <namespace> create token <service account>" in notes
    assert "WARNING: ui.auth=client without an https:// address" in notes
    secure = {"ui": {**plain["ui"], "ingress": {"enabled": True, "host": "hw.example.com",
                                                "tls": {"secretName": "hw-tls"}}}}
    notes = _notes(helm, notes_chart, secure, tmp_path)
    assert "https://hw.example.com" in notes
    assert "WARNING" not in notes
