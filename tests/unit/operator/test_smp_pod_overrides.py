"""podOverrides is a strategic merge patch of the Pod (issue #10 item 13).

Before, render.py merged every list of named objects by ``name`` and replaced all others,
so overrides that Kubernetes' strategic merge patch applies by the field's own merge key
(volumeMounts by mountPath, ports by containerPort) or by directive (``$patch``) came out
wrong. Each test below names what the name-only merge did.
"""

from __future__ import annotations

from typing import Any

import pytest
from headwater import contract
from headwater_operator.flowruns.render import PodOverridesError, render_pod
from test_flowrun_builders import T0, make_deployment, make_flow, make_run, make_settings


def render(**run_template: Any) -> dict[str, Any]:
    run = make_run()
    settings = make_settings(run=run, flow=make_flow(),
                             deployment=make_deployment(runTemplate=run_template))
    return render_pod(run, settings, 1, T0)


def container(pod: dict[str, Any]) -> dict[str, Any]:
    first: dict[str, Any] = pod["spec"]["containers"][0]
    return first


def test_a_volume_mount_override_merges_by_mount_path() -> None:
    # The name-only merge collapsed the two mounts of volume "data" into one at /cache.
    pod = render(
        volumes=[{"name": "data", "emptyDir": {}}],
        volumeMounts=[{"name": "data", "mountPath": "/data"}],
        podOverrides={"spec": {"containers": [{
            "name": "flow",
            "volumeMounts": [{"name": "data", "mountPath": "/cache", "subPath": "cache"}],
        }]}},
    )
    # New entries come first, as the API server orders them (apimachinery strategicpatch
    # mergeSortedSlice: a patch item cannot be placed among live items it is not in).
    assert container(pod)["volumeMounts"] == [
        {"name": "data", "mountPath": "/cache", "subPath": "cache"},
        {"name": "data", "mountPath": "/data"},
    ]


def test_a_volume_mount_override_at_the_same_path_changes_that_mount() -> None:
    pod = render(
        volumes=[{"name": "data", "emptyDir": {}}],
        volumeMounts=[{"name": "data", "mountPath": "/data"}],
        podOverrides={"spec": {"containers": [{
            "name": "flow", "volumeMounts": [{"mountPath": "/data", "readOnly": True}],
        }]}},
    )
    assert container(pod)["volumeMounts"] == [
        {"name": "data", "mountPath": "/data", "readOnly": True}]


def test_patch_delete_removes_an_env_entry() -> None:
    # The name-only merge kept DB and copied the directive into it: {"$patch": "delete"}.
    pod = render(
        env=[{"name": "DB", "value": "x"}, {"name": "KEEP", "value": "y"}],
        podOverrides={"spec": {"containers": [{
            "name": "flow", "env": [{"name": "DB", "$patch": "delete"}],
        }]}},
    )
    names = [var["name"] for var in container(pod)["env"]]
    assert "DB" not in names
    assert "KEEP" in names
    assert contract.ENV_ATTEMPT in names
    assert all("$patch" not in var for var in container(pod)["env"])


def test_patch_replace_replaces_a_merged_list() -> None:
    # The name-only merge treated the list as unnamed and kept the directive as an entry.
    pod = render(
        volumes=[{"name": "data", "emptyDir": {}}, {"name": "tmp", "emptyDir": {}}],
        volumeMounts=[{"name": "data", "mountPath": "/data"}],
        podOverrides={"spec": {"volumes": [{"$patch": "replace"},
                                           {"name": "only", "emptyDir": {}}]}},
    )
    assert pod["spec"]["volumes"] == [{"name": "only", "emptyDir": {}}]


def test_lists_without_a_merge_strategy_are_replaced() -> None:
    pod = render(
        tolerations=[{"key": "batch", "operator": "Exists"}],
        podOverrides={"spec": {"tolerations": [{"key": "gpu", "operator": "Exists"}]}},
    )
    assert pod["spec"]["tolerations"] == [{"key": "gpu", "operator": "Exists"}]


def test_a_new_container_is_added_and_the_flow_container_kept() -> None:
    pod = render(podOverrides={"spec": {"containers": [
        {"name": "sidecar", "image": "busybox:1.36"}]}})
    containers = {c["name"]: c for c in pod["spec"]["containers"]}
    assert [c["name"] for c in pod["spec"]["containers"]] == ["sidecar", "flow"]
    assert containers["flow"]["image"] == "ghcr.io/acme/etl:1.0"
    assert containers["flow"]["command"]


def test_identity_survives_overrides_that_delete_labels() -> None:
    pod = render(podOverrides={"metadata": {"labels": None, "name": "other"}})
    assert pod["metadata"]["name"] == "run-a-1"
    assert pod["metadata"]["labels"][contract.LABEL_MANAGED_BY] == contract.MANAGED_BY_VALUE


def test_an_override_the_api_server_would_refuse_is_an_error_naming_the_field() -> None:
    with pytest.raises(PodOverridesError) as refused:
        render(podOverrides={"spec": {"containers": [{"image": "x"}]}})
    assert str(refused.value) == (
        "runTemplate.podOverrides is not a valid strategic merge patch of a Pod: "
        "map: map[image:x] does not contain declared merge key: name")
