"""The emulated API server behaves like Kubernetes where Headwater depends on it.

Each test talks HTTP through the real ``kubernetes`` client (via ``headwater_operator.kube``)
or a raw aiohttp session, so what is proven is the wire behaviour the operator and the
CLI see: resourceVersion and generation bookkeeping, optimistic concurrency, the status
subresource, finalizers, garbage collection, selectors and watches.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import kubernetes.client
import pytest
from headwater.contract import decode_summary
from headwater_dev.emulator import BackgroundEmulator
from headwater_dev.kubelet import Kubelet
from headwater_operator import kube as k

NS = "default"
MANAGED = {"app.kubernetes.io/managed-by": "headwater"}


def _flowrun(name: str, **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {"deploymentRef": {"name": "d"}, **spec}}


def _pod(name: str, labels: dict[str, str] | None = None,
         owner: dict[str, Any] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": labels or {}}
    if owner is not None:
        meta["ownerReferences"] = [{
            "apiVersion": owner["apiVersion"], "kind": owner["kind"],
            "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"],
            "controller": True, "blockOwnerDeletion": True}]
    return {"metadata": meta, "spec": {"containers": [{"name": "main", "image": "busybox"}]}}


async def test_create_sets_server_fields_and_namespace_from_url(kube: k.Kube) -> None:
    created = await kube.create(k.FLOWRUNS, _flowrun("r1"), namespace=NS)
    meta = created["metadata"]
    assert meta["namespace"] == NS
    assert meta["uid"]
    assert meta["creationTimestamp"].endswith("Z")
    assert meta["generation"] == 1
    assert int(meta["resourceVersion"]) > 0
    assert created["apiVersion"] == "headwater.dev/v1alpha1"
    assert created["kind"] == "FlowRun"
    assert await kube.get(k.FLOWRUNS, "r1", namespace=NS) == created


async def test_every_write_bumps_resource_version_and_spec_bumps_generation(
    kube: k.Kube,
) -> None:
    created = await kube.create(k.FLOWRUNS, _flowrun("r1"), namespace=NS)
    labelled = await kube.patch(k.FLOWRUNS, "r1", {"metadata": {"labels": {"a": "b"}}},
                                namespace=NS)
    status = await kube.patch_status(k.FLOWRUNS, "r1", {"status": {"phase": "Pending"}},
                                     namespace=NS)
    spec = await kube.patch(k.FLOWRUNS, "r1", {"spec": {"cancel": True}}, namespace=NS)
    versions = [int(o["metadata"]["resourceVersion"]) for o in (created, labelled, status, spec)]
    assert versions == sorted(versions)
    assert len(set(versions)) == 4
    # generation follows spec only: metadata and status writes leave it alone.
    assert [o["metadata"]["generation"] for o in (created, labelled, status, spec)] == [
        1, 1, 1, 2]


async def test_create_of_existing_name_is_already_exists(kube: k.Kube) -> None:
    await kube.create(k.FLOWRUNS, _flowrun("r1"), namespace=NS)
    with pytest.raises(k.AlreadyExists, match='"r1" already exists'):
        await kube.create(k.FLOWRUNS, _flowrun("r1"), namespace=NS)


async def test_missing_object_is_not_found(kube: k.Kube) -> None:
    with pytest.raises(k.NotFound, match='"nope" not found'):
        await kube.get(k.FLOWRUNS, "nope", namespace=NS)
    with pytest.raises(k.NotFound):
        await kube.patch(k.FLOWRUNS, "nope", {"spec": {}}, namespace=NS)
    with pytest.raises(k.NotFound):
        await kube.delete(k.FLOWRUNS, "nope", namespace=NS)


async def test_stale_resource_version_is_conflict(kube: k.Kube) -> None:
    created = await kube.create(k.FLOWRUNS, _flowrun("r1"), namespace=NS)
    stale = created["metadata"]["resourceVersion"]
    await kube.patch(k.FLOWRUNS, "r1", {"spec": {"cancel": True}}, namespace=NS)
    with pytest.raises(k.Conflict, match="the object has been modified"):
        await kube.patch(k.FLOWRUNS, "r1", {"metadata": {"resourceVersion": stale},
                                            "spec": {"cancel": False}}, namespace=NS)
    with pytest.raises(k.Conflict):
        await kube.replace(k.FLOWRUNS, created, namespace=NS)
    current = await kube.get(k.FLOWRUNS, "r1", namespace=NS)
    assert current["spec"]["cancel"] is True
    current["spec"]["cancel"] = False
    replaced = await kube.replace(k.FLOWRUNS, current, namespace=NS)
    assert replaced["spec"]["cancel"] is False


async def test_lease_writes_and_deletes_with_a_stale_version_are_conflicts(
        kube: k.Kube) -> None:
    lease = {"metadata": {"name": "slot"}, "spec": {"holderIdentity": "a",
                                                    "leaseDurationSeconds": 10}}
    created = await kube.create(k.LEASES, lease, namespace=NS)
    stale = created["metadata"]["resourceVersion"]
    taken = await kube.replace(k.LEASES, {**created, "spec": {"holderIdentity": "b",
                                                              "leaseDurationSeconds": 10}},
                               namespace=NS)
    # A second PUT carrying the version both read loses, as on a real API server.
    with pytest.raises(k.Conflict) as lost:
        await kube.replace(k.LEASES, {**created, "spec": {"holderIdentity": "c"}},
                           namespace=NS)
    assert lost.value.message == (
        'Operation cannot be fulfilled on leases.coordination.k8s.io "slot": the object '
        "has been modified; please apply your changes to the latest version and try again")
    # A DELETE whose resourceVersion precondition is stale deletes nothing.
    with pytest.raises(k.Conflict) as refused:
        await kube.delete(k.LEASES, "slot", namespace=NS, resource_version=stale)
    current = taken["metadata"]["resourceVersion"]
    assert refused.value.message == (
        'Operation cannot be fulfilled on leases.coordination.k8s.io "slot": StorageError: '
        "invalid object, Code: 4, Key: /registry/leases/default/slot, ResourceVersion: 0, "
        f"AdditionalErrorMsg: Precondition failed: ResourceVersion in precondition: {stale}, "
        f"ResourceVersion in object meta: {current}")
    assert (await kube.get(k.LEASES, "slot", namespace=NS))["spec"]["holderIdentity"] == "b"
    await kube.delete(k.LEASES, "slot", namespace=NS, resource_version=current)
    with pytest.raises(k.NotFound):
        await kube.get(k.LEASES, "slot", namespace=NS)


async def test_failed_json_patch_test_op_is_invalid_and_changes_nothing(kube: k.Kube) -> None:
    await kube.create(k.FLOWRUNS, _flowrun("r1"), namespace=NS)
    await kube.patch_status(k.FLOWRUNS, "r1", {"status": {"phase": "Running"}}, namespace=NS)
    before = await kube.get(k.FLOWRUNS, "r1", namespace=NS)
    with pytest.raises(k.Invalid, match="test"):
        await kube.patch_status(k.FLOWRUNS, "r1", [
            k.jp_test("/status/phase", "Pending"),
            k.jp_replace("/status/phase", "Running")], namespace=NS)
    assert await kube.get(k.FLOWRUNS, "r1", namespace=NS) == before
    after = await kube.patch_status(k.FLOWRUNS, "r1", [
        k.jp_test("/status/phase", "Running"),
        k.jp_replace("/status/phase", "Completed")], namespace=NS)
    assert after["status"]["phase"] == "Completed"


async def test_status_subresource_semantics(kube: k.Kube) -> None:
    created = await kube.create(k.FLOWRUNS, {**_flowrun("r1"), "status": {"phase": "Forged"}},
                                namespace=NS)
    assert "status" not in created  # status is ignored on create
    await kube.patch_status(k.FLOWRUNS, "r1", {"status": {"phase": "Running"},
                                               "spec": {"cancel": True}}, namespace=NS)
    current = await kube.get(k.FLOWRUNS, "r1", namespace=NS)
    assert current["status"] == {"phase": "Running"}
    assert "cancel" not in current["spec"]  # …/status writes only status
    await kube.patch(k.FLOWRUNS, "r1", {"spec": {"cancel": True},
                                        "status": {"phase": "Hijacked"}}, namespace=NS)
    current = await kube.get(k.FLOWRUNS, "r1", namespace=NS)
    assert current["spec"]["cancel"] is True
    assert current["status"] == {"phase": "Running"}  # main resource ignores status


async def test_pods_start_pending_and_report_through_status(kube: k.Kube) -> None:
    pod = await kube.create(k.PODS, _pod("p1"), namespace=NS)
    assert pod["status"]["phase"] == "Pending"
    running = await kube.patch_status(k.PODS, "p1", {"status": {"phase": "Running"}},
                                      namespace=NS)
    assert running["status"]["phase"] == "Running"


async def test_finalizers_delay_deletion_until_the_last_is_removed(kube: k.Kube) -> None:
    body = _flowrun("r1")
    body["metadata"]["finalizers"] = ["headwater.dev/finalizer", "example.com/other"]
    await kube.create(k.FLOWRUNS, body, namespace=NS)
    deleting = await kube.delete(k.FLOWRUNS, "r1", namespace=NS)
    assert deleting is not None
    assert deleting["metadata"]["deletionTimestamp"]
    still = await kube.get(k.FLOWRUNS, "r1", namespace=NS)
    assert still["metadata"]["deletionTimestamp"] == deleting["metadata"]["deletionTimestamp"]
    await kube.patch(k.FLOWRUNS, "r1", {"metadata": {"finalizers": ["example.com/other"]}},
                     namespace=NS)
    assert await kube.get(k.FLOWRUNS, "r1", namespace=NS)
    await kube.patch(k.FLOWRUNS, "r1", {"metadata": {"finalizers": None}}, namespace=NS)
    with pytest.raises(k.NotFound):
        await kube.get(k.FLOWRUNS, "r1", namespace=NS)


async def test_deleting_an_owner_collects_its_dependents(
    kube: k.Kube, emulator: BackgroundEmulator,
) -> None:
    deployment = await kube.create(k.DEPLOYMENTS, {"metadata": {"name": "d"},
                                                   "spec": {"flowRef": {"name": "f"}}},
                                   namespace=NS)
    run = await kube.create(k.FLOWRUNS, {**_flowrun("r1"), "metadata": {
        "name": "r1", "ownerReferences": [{"apiVersion": deployment["apiVersion"],
                                           "kind": "Deployment", "name": "d",
                                           "uid": deployment["metadata"]["uid"]}]}},
                            namespace=NS)
    await kube.create(k.PODS, _pod("r1-1", owner=run), namespace=NS)
    await kube.create(k.PODS, _pod("unrelated"), namespace=NS)
    await kube.delete(k.DEPLOYMENTS, "d", namespace=NS)
    # Pod → FlowRun → Deployment: the cascade reaches the grandchild.
    assert emulator.object("flowruns", "r1") is None
    assert emulator.object("pods", "r1-1") is None
    assert emulator.object("pods", "unrelated") is not None


async def test_orphan_propagation_keeps_dependents(
    kube: k.Kube, emulator: BackgroundEmulator,
) -> None:
    run = await kube.create(k.FLOWRUNS, _flowrun("r1"), namespace=NS)
    await kube.create(k.PODS, _pod("r1-1", owner=run), namespace=NS)
    await kube.delete(k.FLOWRUNS, "r1", namespace=NS, propagation_policy="Orphan")
    pod = emulator.object("pods", "r1-1")
    assert pod is not None
    assert "ownerReferences" not in pod["metadata"]


async def test_list_honours_label_selectors(kube: k.Kube) -> None:
    await kube.create(k.PODS, _pod("ours", {**MANAGED, "headwater.dev/flow-run": "r1"}),
                      namespace=NS)
    await kube.create(k.PODS, _pod("theirs", {"app": "nginx"}), namespace=NS)
    await kube.create(k.PODS, _pod("bare"), namespace=NS)

    async def names(selector: str | dict[str, str]) -> list[str]:
        pods = await kube.list(k.PODS, namespace=NS, label_selector=selector)
        return [p["metadata"]["name"] for p in pods]

    assert await names(MANAGED) == ["ours"]
    assert await names("app.kubernetes.io/managed-by") == ["ours"]
    assert await names("!app.kubernetes.io/managed-by") == ["bare", "theirs"]
    assert await names("app in (nginx, redis)") == ["theirs"]
    assert await names("app notin (nginx)") == ["bare", "ours"]
    assert await names("app!=nginx,headwater.dev/flow-run=r1") == ["ours"]
    fields = await kube.list(k.PODS, namespace=NS, field_selector="metadata.name=bare")
    assert [p["metadata"]["name"] for p in fields] == ["bare"]


async def _watch(session: aiohttp.ClientSession, url: str, count: int
                 ) -> list[tuple[str, str]]:
    events: list[tuple[str, str]] = []
    async with session.get(url) as response:
        async for line in response.content:
            event = json.loads(line)
            events.append((event["type"], event["object"]["metadata"]["name"]))
            if len(events) == count:
                break
    return events


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
        yield http


async def test_watch_with_label_selector_delivers_only_matching_pods(
    kube: k.Kube, emulator: BackgroundEmulator, session: aiohttp.ClientSession,
) -> None:
    await kube.create(k.PODS, _pod("before", MANAGED), namespace=NS)
    await kube.create(k.PODS, _pod("unrelated-before"), namespace=NS)
    url = (f"{emulator.url}/api/v1/namespaces/{NS}/pods?watch=true"
           f"&labelSelector=app.kubernetes.io/managed-by%3Dheadwater")
    watcher = asyncio.create_task(_watch(session, url, 4))
    await asyncio.sleep(0.05)
    await kube.create(k.PODS, _pod("unrelated-after"), namespace=NS)
    await kube.create(k.PODS, _pod("after", MANAGED), namespace=NS)
    await kube.patch_status(k.PODS, "after", {"status": {"phase": "Running"}}, namespace=NS)
    await kube.patch_status(k.PODS, "unrelated-after", {"status": {"phase": "Running"}},
                            namespace=NS)
    await kube.delete(k.PODS, "after", namespace=NS)
    events = await asyncio.wait_for(watcher, 5)
    assert events == [("ADDED", "before"), ("ADDED", "after"), ("MODIFIED", "after"),
                      ("DELETED", "after")]


async def test_watch_resumes_from_a_resource_version(
    kube: k.Kube, emulator: BackgroundEmulator, session: aiohttp.ClientSession,
) -> None:
    await kube.create(k.FLOWRUNS, _flowrun("old"), namespace=NS)
    listed = await session.get(f"{emulator.url}/apis/headwater.dev/v1alpha1/namespaces/"
                               f"{NS}/flowruns")
    list_rv = (await listed.json())["metadata"]["resourceVersion"]
    # Changes made between the list and the watch are replayed, nothing older is.
    await kube.create(k.FLOWRUNS, _flowrun("new"), namespace=NS)
    await kube.patch(k.FLOWRUNS, "old", {"spec": {"cancel": True}}, namespace=NS)
    url = (f"{emulator.url}/apis/headwater.dev/v1alpha1/namespaces/{NS}/flowruns"
           f"?watch=true&resourceVersion={list_rv}")
    assert await asyncio.wait_for(_watch(session, url, 2), 5) == [
        ("ADDED", "new"), ("MODIFIED", "old")]


async def test_watch_ends_after_timeout_seconds(
    emulator: BackgroundEmulator, session: aiohttp.ClientSession,
) -> None:
    url = f"{emulator.url}/api/v1/namespaces/{NS}/pods?watch=true&timeoutSeconds=0.1"
    async with session.get(url) as response:
        assert await asyncio.wait_for(response.read(), 5) == b""


async def test_request_log_counts_writes_by_verb_resource_and_code(
    kube: k.Kube, emulator: BackgroundEmulator,
) -> None:
    mark = emulator.requests.mark()
    await kube.create(k.FLOWRUNS, _flowrun("r1"), namespace=NS)
    with pytest.raises(k.AlreadyExists):
        await kube.create(k.FLOWRUNS, _flowrun("r1"), namespace=NS)
    await kube.patch_status(k.FLOWRUNS, "r1", {"status": {"phase": "Running"}}, namespace=NS)
    await kube.get(k.FLOWRUNS, "r1", namespace=NS)
    counts = emulator.requests.counter(mark)
    assert counts == {("create", "flowruns", 201): 1, ("create", "flowruns", 409): 1,
                      ("patch", "flowruns/status", 200): 1, ("get", "flowruns", 200): 1}
    assert emulator.requests.count(writes_only=True, since=mark) == 3


async def test_kube_reports_requests_to_observers(kube: k.Kube) -> None:
    seen: list[tuple[str, int]] = []
    k.add_request_observer(lambda verb, code: seen.append((verb, code)))
    try:
        await kube.create(k.FLOWRUNS, _flowrun("r1"), namespace=NS)
        with pytest.raises(k.NotFound):
            await kube.get(k.FLOWRUNS, "nope", namespace=NS)
    finally:
        k._observers.clear()
    assert seen == [("create", 201), ("get", 404)]


async def test_pod_log_and_follow(kube: k.Kube, kubelet: Kubelet,
                                  emulator: BackgroundEmulator) -> None:
    await kube.create(k.PODS, _pod("p1"), namespace=NS)
    # Not on a node: no log location, so an empty answer (204), not an error.
    assert await kube.read_pod_log("p1", namespace=NS) == ""
    await kubelet.schedule("p1")
    with pytest.raises(k.KubeError, match='container "main" in pod "p1" is waiting to start: '
                                          "ContainerCreating"):
        await kube.read_pod_log("p1", namespace=NS)
    await kubelet.run("p1")
    emulator.append_log(NS, "p1", "line 1\n")
    assert await kube.read_pod_log("p1", namespace=NS) == "line 1\n"

    async def follow() -> str:
        return "".join([chunk async for chunk in kube.follow_pod_log("p1", namespace=NS)])

    follower = asyncio.create_task(follow())
    await asyncio.sleep(0.05)
    emulator.append_log(NS, "p1", "line 2\n")
    await kubelet.succeed("p1")
    assert await asyncio.wait_for(follower, 5) == "line 1\nline 2\n"


async def test_log_of_a_multi_container_pod_needs_the_container_name(
    kube: k.Kube, kubelet: Kubelet, emulator: BackgroundEmulator,
) -> None:
    # kubernetes v1.32 pkg/registry/core/pod/strategy.go validateContainer.
    pod = _pod("p2")
    pod["spec"]["initContainers"] = [{"name": "istio-init", "image": "proxyv2"}]
    pod["spec"]["containers"].append({"name": "istio-proxy", "image": "proxyv2"})
    await kube.create(k.PODS, pod, namespace=NS)
    await kubelet.run("p2")
    emulator.append_log(NS, "p2", "from main\n")
    with pytest.raises(k.KubeError) as ambiguous:
        await kube.read_pod_log("p2", namespace=NS)
    assert (ambiguous.value.status, ambiguous.value.reason, ambiguous.value.message) == (
        400, "BadRequest", "a container name must be specified for pod p2, choose one of: "
                           "[istio-init main istio-proxy]")
    with pytest.raises(k.KubeError) as unknown:
        await kube.read_pod_log("p2", namespace=NS, container="flow")
    assert (unknown.value.status, unknown.value.message) == (
        400, "container flow is not valid for pod p2")
    assert await kube.read_pod_log("p2", namespace=NS, container="main") == "from main\n"


def test_background_emulator_serves_blocking_callers(tmp_path: Any) -> None:
    with BackgroundEmulator() as api, k.BlockingKube(kubernetes.client.ApiClient(
            k.load_configuration(api.kubeconfig_path))) as client:
        client.create(k.FLOWRUNS, _flowrun("r1"), namespace=NS)
        assert [r["metadata"]["name"] for r in client.list(k.FLOWRUNS, namespace=NS)] == ["r1"]
        assert api.call(api.emulator.object, "flowruns", "r1") is not None


async def test_generate_name_and_collection_delete(
    kube: k.Kube, emulator: BackgroundEmulator,
) -> None:
    first = await kube.create(k.PODS, {**_pod(""), "metadata": {"generateName": "run-",
                                                                "labels": MANAGED}},
                              namespace=NS)
    second = await kube.create(k.PODS, {**_pod(""), "metadata": {"generateName": "run-"}},
                               namespace=NS)
    assert first["metadata"]["name"].startswith("run-")
    assert first["metadata"]["name"] != second["metadata"]["name"]
    await k.transport(kube.client).request_json(
        "deletecollection", "DELETE", k.PODS.path(NS),
        query=[("labelSelector", "app.kubernetes.io/managed-by=headwater")])
    assert [p["metadata"]["name"] for p in emulator.objects("pods", NS)] == [
        second["metadata"]["name"]]


def _configmaps(emulator: BackgroundEmulator, count: int) -> Any:
    """Store ConfigMaps ``c0`` … in ``NS`` directly; returns their ResourceSpec."""
    spec = emulator.call(emulator.emulator.store.resource, "", "v1", "configmaps")
    for index in range(count):
        emulator.call(emulator.emulator.store.create, spec, NS,
                      {"metadata": {"name": f"c{index}"}})
    return spec


async def test_watch_from_a_compacted_resource_version_is_gone(
    emulator: BackgroundEmulator, session: aiohttp.ClientSession,
) -> None:
    spec = _configmaps(emulator, 3)
    # Shrink the history as etcd compaction would, then ask for what was dropped.
    emulator.call(setattr, emulator.emulator.store, "_history_limit", 1)
    emulator.call(emulator.emulator.store.create, spec, NS, {"metadata": {"name": "last"}})
    url = f"{emulator.url}/api/v1/namespaces/{NS}/configmaps?watch=true&resourceVersion=1"
    async with session.get(url) as response:
        # As the watch cache answers (apiserver v0.32.9 pkg/storage/cacher/cacher.go Watch,
        # newErrWatcher): 200, one ERROR event carrying the 410, and the end of the stream.
        assert response.status == 200
        lines = (await response.read()).decode().splitlines()
    assert len(lines) == 1
    event = json.loads(lines[0])
    assert event["type"] == "ERROR"
    assert {key: event["object"][key] for key in ("kind", "code", "reason")} == {
        "kind": "Status", "code": 410, "reason": "Expired"}
    assert event["object"]["message"].startswith("too old resource version: 1 (")


async def test_list_serves_pages_with_limit_and_continue(
    emulator: BackgroundEmulator, session: aiohttp.ClientSession,
) -> None:
    spec = _configmaps(emulator, 5)
    namespaces = emulator.emulator.store.resource("", "v1", "namespaces")
    emulator.call(emulator.emulator.store.create, namespaces, None,
                  {"metadata": {"name": "elsewhere"}})
    url = f"{emulator.url}/api/v1/namespaces/{NS}/configmaps"
    pages: list[list[str]] = []
    versions: list[str] = []
    params = {"limit": "2"}
    while True:
        async with session.get(url, params=params) as response:
            assert response.status == 200
            body = await response.json()
        pages.append([item["metadata"]["name"] for item in body["items"]])
        versions.append(body["metadata"]["resourceVersion"])
        if "continue" not in body["metadata"]:
            break
        params = {"limit": "2", "continue": body["metadata"]["continue"]}
        emulator.call(emulator.emulator.store.create, spec, "elsewhere",
                      {"metadata": {"name": f"x{len(pages)}"}})  # bumps the version
    assert pages == [["c0", "c1"], ["c2", "c3"], ["c4"]]
    assert versions == [versions[0]] * 3
    for bad, named in (({"limit": "0"}, "limit"), ({"limit": "2", "continue": "%%"}, "continue")):
        async with session.get(url, params=bad) as response:
            assert response.status == 400
            assert named in (await response.json())["message"]


async def test_kubelet_drives_a_pod_through_its_life(
    kube: k.Kube, kubelet: Kubelet, emulator: BackgroundEmulator,
) -> None:
    await kube.create(k.PODS, _pod("r1-1", {**MANAGED, "headwater.dev/flow-run": "r1"}),
                      namespace=NS)
    pod = await kubelet.wait_for_pod("headwater.dev/flow-run=r1", timeout=5)
    scheduled = await kubelet.schedule(pod)
    assert scheduled["spec"]["nodeName"] == "node-1"
    assert scheduled["status"]["containerStatuses"][0]["state"]["waiting"]["reason"] == (
        "ContainerCreating")
    running = await kubelet.run(pod)
    assert running["status"]["phase"] == "Running"
    kubelet.write_log(pod, "hello\n")
    assert await kube.read_pod_log("r1-1", namespace=NS) == "hello\n"
    done = await kubelet.succeed(pod)
    state = done["status"]["containerStatuses"][0]["state"]["terminated"]
    assert done["status"]["phase"] == "Succeeded"
    assert state["exitCode"] == 0
    assert decode_summary(state["message"])["state"] == "Completed"


@pytest.mark.parametrize(("action", "phase", "reason"), [
    ("fail", "Failed", "Error"),
    ("oom_kill", "Failed", "OOMKilled"),
    ("evict", "Failed", "ContainerStatusUnknown"),
    ("image_pull_error", "Pending", "ErrImagePull"),
    ("config_error", "Pending", "CreateContainerConfigError"),
])
async def test_kubelet_failure_modes_look_like_kubernetes(
    kube: k.Kube, kubelet: Kubelet, action: str, phase: str, reason: str,
) -> None:
    await kube.create(k.PODS, _pod("p"), namespace=NS)
    await kubelet.run("p")
    pod = await getattr(kubelet, action)("p")
    container = pod["status"]["containerStatuses"][0]["state"]
    assert pod["status"]["phase"] == phase
    assert reason in (container.get("terminated") or container.get("waiting") or {}).values()
    if action == "evict":
        assert pod["status"]["reason"] == "Evicted"


async def test_kubelet_unschedulable_and_node_lost(
    kube: k.Kube, kubelet: Kubelet, emulator: BackgroundEmulator,
) -> None:
    await kube.create(k.PODS, _pod("stuck"), namespace=NS)
    stuck = await kubelet.unschedulable("stuck")
    condition = stuck["status"]["conditions"][0]
    assert (condition["type"], condition["status"], condition["reason"]) == (
        "PodScheduled", "False", "Unschedulable")
    await kube.create(k.PODS, _pod("lost"), namespace=NS)
    await kubelet.run("lost")

    def conditions(pod: dict[str, Any]) -> dict[str, tuple[str, str | None]]:
        return {c["type"]: (c["status"], c.get("reason")) for c in pod["status"]["conditions"]}

    # 1. Node lifecycle controller (MarkPodsNotReady): only Ready turns False.
    not_ready = await kubelet.node_not_ready("lost")
    assert conditions(not_ready)["Ready"] == ("False", None)
    assert conditions(not_ready)["ContainersReady"] == ("True", None)
    assert not_ready["status"]["phase"] == "Running"
    # 2. Taint eviction: DisruptionTarget, then a graceful delete no kubelet completes.
    evicted = await kubelet.taint_evict("lost")
    assert conditions(evicted)["DisruptionTarget"] == ("True", "DeletionByTaintManager")
    assert evicted["metadata"]["deletionTimestamp"]
    assert "reason" not in evicted["status"]  # nothing sets a NodeLost pod reason any more
    assert emulator.object("pods", "lost") is not None
    # 3. Pod GC, once the Node object is deleted: phase Failed, then forced deletion.
    await kubelet.pod_gc("lost")
    assert emulator.object("pods", "lost") is None


async def test_kubelet_refusals_carry_the_kubelets_reasons_and_messages(
    kube: k.Kube, kubelet: Kubelet,
) -> None:
    def waiting(pod: dict[str, Any]) -> tuple[str, str]:
        state = pod["status"]["containerStatuses"][0]["state"]["waiting"]
        return state["reason"], state["message"]

    created = await kube.create(k.PODS, _pod("root"), namespace=NS)
    await kubelet.schedule("root")
    assert waiting(await kubelet.run_as_root("root")) == (
        "CreateContainerConfigError",
        'container has runAsNonRoot and image will run as root (pod: '
        f'"root_default({created["metadata"]["uid"]})", container: main)')
    assert waiting(await kubelet.run_as_root("root", image_user="app"))[1].startswith(
        "container has runAsNonRoot and image has non-numeric user (app), cannot verify user "
        "is non-root")
    assert waiting(await kubelet.missing_secret("root", "db")) == (
        "CreateContainerConfigError", 'secret "db" not found')
    assert waiting(await kubelet.missing_secret("root", "db", key="password"))[1] == (
        "couldn't find key password in Secret default/db")
    pod = _pod("badimage")
    pod["spec"]["containers"][0]["image"] = "ghcr.io/Acme/etl:1"
    await kube.create(k.PODS, pod, namespace=NS)
    await kubelet.schedule("badimage")
    assert waiting(await kubelet.invalid_image("badimage")) == (
        "InvalidImageName",
        'Failed to apply default image tag "ghcr.io/Acme/etl:1": couldn\'t parse image '
        'reference "ghcr.io/Acme/etl:1": invalid reference format: repository name '
        "(Acme/etl) must be lowercase")


async def test_kubelet_node_shutdown_fails_the_pod_as_a_kubelet_does(
    kube: k.Kube, kubelet: Kubelet,
) -> None:
    await kube.create(k.PODS, _pod("down"), namespace=NS)
    await kubelet.run("down")
    pod = await kubelet.node_shutdown("down")
    status = pod["status"]
    assert (status["phase"], status["reason"], status["message"]) == (
        "Failed", "Terminated", "Pod was terminated in response to imminent node shutdown.")
    disruption = [c for c in status["conditions"] if c["type"] == "DisruptionTarget"]
    assert (disruption[0]["status"], disruption[0]["reason"]) == ("True", "TerminationByKubelet")
    assert decode_summary(status["containerStatuses"][0]["state"]["terminated"]["message"])[
        "state"] == "Cancelled"


async def test_kubelet_wait_for_pod_names_what_it_waited_for(kubelet: Kubelet) -> None:
    with pytest.raises(TimeoutError, match="no pod 'ghost' in namespace 'default'"):
        await kubelet.wait_for_pod("ghost", timeout=0.05)


async def test_undeclared_fields_are_pruned_as_by_a_real_api_server(kube: k.Kube) -> None:
    await kube.create(k.FLOWRUNS, {**_flowrun("r1", parameters={"any": {"thing": 1}}),
                                   "bogusTopLevel": True}, namespace=NS)
    await kube.patch(k.FLOWRUNS, "r1", {"spec": {"notInTheSchema": 1}}, namespace=NS)
    patched = await kube.patch_status(k.FLOWRUNS, "r1", {"status": {
        "phase": "Running", "kopf": {"progress": {}}, "taskRuns": {"Completed": 2}}},
        namespace=NS)
    assert "bogusTopLevel" not in patched
    assert "notInTheSchema" not in patched["spec"]
    assert patched["spec"]["parameters"] == {"any": {"thing": 1}}  # preserve-unknown
    assert patched["status"] == {"phase": "Running", "taskRuns": {"Completed": 2}}


async def test_foreground_propagation_keeps_the_owner_until_dependents_are_gone(
    kube: k.Kube, emulator: BackgroundEmulator,
) -> None:
    run = await kube.create(k.FLOWRUNS, _flowrun("r1"), namespace=NS)
    pod = _pod("r1-1", owner=run)
    pod["metadata"]["finalizers"] = ["example.com/hold"]
    await kube.create(k.PODS, pod, namespace=NS)
    await kube.create(k.PODS, _pod("r1-2", owner=run), namespace=NS)
    await kube.delete(k.FLOWRUNS, "r1", namespace=NS, propagation_policy="Foreground")
    owner = emulator.object("flowruns", "r1")
    assert owner is not None
    assert owner["metadata"]["deletionTimestamp"]
    assert "foregroundDeletion" in owner["metadata"]["finalizers"]
    assert emulator.object("pods", "r1-2") is None
    held = emulator.object("pods", "r1-1")
    assert held is not None
    assert held["metadata"]["deletionTimestamp"]  # its own finalizer holds it
    await kube.patch(k.PODS, "r1-1", {"metadata": {"finalizers": None}}, namespace=NS)
    assert emulator.object("pods", "r1-1") is None
    assert emulator.object("flowruns", "r1") is None  # released once the last one went


TABLE_ACCEPT = ("application/json;as=Table;v=v1;g=meta.k8s.io,"
                "application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json")


async def test_kubectl_table_request_gets_the_crds_printer_columns(
    kube: k.Kube, emulator: BackgroundEmulator, session: aiohttp.ClientSession,
) -> None:
    for name in ("nightly", "hourly"):
        await kube.create(k.SCHEDULES, {"metadata": {"name": name}, "spec": {
            "deploymentRef": {"name": "etl"}, "cron": "0 6 * * *", "timezone": "UTC"}},
            namespace=NS)
    await kube.patch_status(k.SCHEDULES, "nightly", {"status": {"expression": "0 6 * * *"}},
                            namespace=NS)
    url = f"{emulator.url}/apis/headwater.dev/v1alpha1/namespaces/{NS}/schedules"
    async with session.get(url, headers={"Accept": TABLE_ACCEPT}) as response:
        assert response.status == 200
        table = await response.json()
    assert (table["kind"], table["apiVersion"]) == ("Table", "meta.k8s.io/v1")
    assert [c["name"] for c in table["columnDefinitions"]] == [
        "Name", "Expression", "Timezone", "Suspended", "Last", "Next", "Deployment", "Age"]
    rows = {row["cells"][0]: row for row in table["rows"]}
    assert set(rows) == {"nightly", "hourly"}
    assert rows["nightly"]["cells"][1:4] == ["0 6 * * *", "UTC", None]
    assert rows["nightly"]["cells"][6] == "etl"
    assert rows["nightly"]["object"]["kind"] == "PartialObjectMetadata"
    assert rows["nightly"]["object"]["metadata"]["name"] == "nightly"
    assert int(table["metadata"]["resourceVersion"]) > 0

    # One object by name, the whole object per row, and pages with `continue`.
    async with session.get(f"{url}/nightly", params={"includeObject": "Object"},
                           headers={"Accept": TABLE_ACCEPT}) as response:
        single = await response.json()
    assert [row["cells"][0] for row in single["rows"]] == ["nightly"]
    assert single["rows"][0]["object"]["spec"]["timezone"] == "UTC"
    assert single["metadata"] == {
        "resourceVersion": single["rows"][0]["object"]["metadata"]["resourceVersion"]}
    async with session.get(url, params={"limit": "1", "includeObject": "None"},
                           headers={"Accept": TABLE_ACCEPT}) as response:
        page = await response.json()
    assert len(page["rows"]) == 1
    assert "object" not in page["rows"][0]
    assert page["metadata"]["continue"]
    async with session.get(url, params={"includeObject": "All"},
                           headers={"Accept": TABLE_ACCEPT}) as response:
        assert response.status == 400


async def test_plain_requests_still_get_plain_lists_and_objects(
    kube: k.Kube, emulator: BackgroundEmulator, session: aiohttp.ClientSession,
) -> None:
    await kube.create(k.SCHEDULES, {"metadata": {"name": "nightly"}, "spec": {
        "deploymentRef": {"name": "etl"}, "cron": "0 6 * * *"}}, namespace=NS)
    url = f"{emulator.url}/apis/headwater.dev/v1alpha1/namespaces/{NS}/schedules"
    for accept in ("application/json", "application/json, */*"):
        async with session.get(url, headers={"Accept": accept}) as response:
            body = await response.json()
        assert body["kind"] == "ScheduleList"
        assert [item["metadata"]["name"] for item in body["items"]] == ["nightly"]
    async with session.get(f"{url}/nightly") as response:
        assert (await response.json())["kind"] == "Schedule"
    assert [s["metadata"]["name"] for s in await kube.list(k.SCHEDULES, namespace=NS)] == [
        "nightly"]
    # Built-in kinds answer a Table too, with Name and Age.
    async with session.get(f"{emulator.url}/api/v1/namespaces",
                           headers={"Accept": TABLE_ACCEPT}) as response:
        namespaces = await response.json()
    assert [c["name"] for c in namespaces["columnDefinitions"]] == ["Name", "Age"]
    assert ["default"] in [row["cells"][:1] for row in namespaces["rows"]]


async def test_metadata_only_reads_never_carry_a_secrets_data(
    kube: k.Kube, emulator: BackgroundEmulator, session: aiohttp.ClientSession,
) -> None:
    await kube.create(k.SECRETS, {"metadata": {"name": "db", "labels": {"a": "b"}},
                                  "data": {"password": "aHVudGVyMg=="}}, namespace=NS)
    one = await kube.get(k.SECRETS_METADATA, "db", namespace=NS)
    assert (one["apiVersion"], one["kind"]) == ("meta.k8s.io/v1", "PartialObjectMetadata")
    assert one["metadata"]["labels"] == {"a": "b"}
    assert set(one) == {"apiVersion", "kind", "metadata"}
    listed, version = await kube.list_with_version(k.SECRETS_METADATA, namespace=NS)
    assert [(item["kind"], item["metadata"]["name"], set(item)) for item in listed] == [
        ("PartialObjectMetadata", "db", {"apiVersion", "kind", "metadata"})]

    # A watch sends each event's object as metadata only.
    stream = kube.watch(k.SECRETS_METADATA, namespace=NS, resource_version=version,
                        timeout_seconds=5)
    await kube.patch(k.SECRETS, "db", {"stringData": {"user": "ada"}}, namespace=NS)
    kind, event = await anext(stream)
    await stream.aclose()
    assert (kind, event["kind"], set(event)) == (
        "MODIFIED", "PartialObjectMetadata", {"apiVersion", "kind", "metadata"})

    # The wrong one of the two targets is a 406, as on a real server.
    url = f"{emulator.url}/api/v1/namespaces/{NS}/secrets"
    as_object = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
    async with session.get(url, headers={"Accept": as_object}) as response:
        assert response.status == 406
        assert "is a list" in (await response.json())["message"]
    as_list = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
    async with session.get(f"{url}/db", headers={"Accept": as_list}) as response:
        assert response.status == 406
        assert "is not a list" in (await response.json())["message"]


async def test_a_secrets_string_data_is_stored_as_data(kube: k.Kube) -> None:
    created = await kube.create(k.SECRETS, {
        "metadata": {"name": "db"}, "data": {"user": "YWRh", "password": "b2xk"},
        "stringData": {"password": "new"}}, namespace=NS)
    assert "stringData" not in created
    assert created["data"] == {"user": "YWRh", "password": "bmV3"}
    patched = await kube.patch(k.SECRETS, "db", {"stringData": {"host": "db.local"}},
                               namespace=NS)
    assert "stringData" not in patched
    assert patched["data"]["host"] == "ZGIubG9jYWw="
    assert await kube.get(k.SECRETS, "db", namespace=NS) == patched
