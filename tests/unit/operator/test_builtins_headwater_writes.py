"""What Headwater's operator writes passes the API server's decoder and validation: the
rendered flow-run pod, the leader Lease, and the core/v1 Events kopf posts for it."""

from __future__ import annotations

import datetime
from typing import Any

from headwater_dev.builtins import (
    schema_errors,
    unknown_builtin_fields,
    validate_builtin,
)
from headwater_operator import leader
from headwater_operator.flowruns.render import render_pod
from test_flowrun_builders import T0, make_deployment, make_run, make_settings

PODS = ("", "v1", "pods")
LEASES = ("coordination.k8s.io", "v1", "leases")
CORE_EVENTS = ("", "v1", "events")


def problems(kind: tuple[str, str, str], obj: dict[str, Any]) -> list[str]:
    return (schema_errors(kind, obj) + unknown_builtin_fields(kind, obj)
            + [e.message() for e in validate_builtin(kind, obj)])


def test_the_rendered_pod_with_a_full_run_template_is_accepted() -> None:
    run = make_run("a" * 60)
    deployment = make_deployment(timeoutSeconds=600, runTemplate={
        "serviceAccountName": "etl", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}},
        "env": [{"name": "DB", "valueFrom": {"secretKeyRef": {"name": "db", "key": "url"}}}],
        "envFrom": [{"configMapRef": {"name": "settings"}}],
        "nodeSelector": {"pool": "batch"},
        "tolerations": [{"key": "batch", "operator": "Exists", "effect": "NoSchedule"}],
        "labels": {"team": "data"}, "annotations": {"example.com/owner": "data"},
        "volumes": [{"name": "scratch", "emptyDir": {}}],
        "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}],
        "podOverrides": {"spec": {"priorityClassName": "batch"}},
    })
    pod = render_pod(run, make_settings(run=run, deployment=deployment), 3, T0)
    assert problems(PODS, pod) == []


def test_the_leader_lease_is_accepted() -> None:
    now = datetime.datetime(2024, 5, 1, 10, 0, tzinfo=datetime.UTC)
    lease = leader.lease_manifest("hw", "headwater-operator",
                                  leader.claim_spec(None, "op-0-abcde", now, 15.0))
    assert problems(LEASES, lease) == []


def kopf_event(now: datetime.datetime) -> dict[str, Any]:
    # kopf/_cogs/clients/events.py post_event's body (kopf 1.x), for a FlowRun.
    return {"metadata": {"namespace": "ns", "generateName": "kopf-event-",
                         "name": "kopf-event-x7k2p"},
            "action": "Action?", "type": "Normal", "reason": "PodCreated",
            "message": "created pod run-a-1", "reportingComponent": "kopf",
            "reportingInstance": "dev", "source": {"component": "kopf"},
            "involvedObject": {"apiVersion": "headwater.dev/v1", "kind": "FlowRun",
                               "name": "run-a", "uid": "u", "namespace": "ns"},
            "firstTimestamp": now.isoformat(), "lastTimestamp": now.isoformat(),
            "eventTime": now.isoformat()}


def test_kopf_events_are_accepted() -> None:
    now = datetime.datetime(2024, 5, 1, 10, 0, 0, 123456, tzinfo=datetime.UTC)
    assert problems(CORE_EVENTS, kopf_event(now)) == []


def test_a_kopf_event_stamped_on_a_whole_second_is_refused() -> None:
    # Python's isoformat drops ".000000" when microsecond == 0, and eventTime is a
    # MicroTime, which Go parses with an exact six-digit fraction: that event is a 400
    # (kopf logs a warning and drops it). One event in a million; a kopf defect.
    now = datetime.datetime(2024, 5, 1, 10, 0, 0, tzinfo=datetime.UTC)
    assert schema_errors(CORE_EVENTS, kopf_event(now)) == [
        'parsing time "2024-05-01T10:00:00+00:00" as "2006-01-02T15:04:05.000000Z07:00": '
        'cannot parse "+00:00" as ".000000"']


def test_an_event_message_over_1024_bytes_is_refused() -> None:
    # The reconciler cuts messages to 1024 *characters*; the API server counts bytes.
    now = datetime.datetime(2024, 5, 1, 10, 0, 0, 1, tzinfo=datetime.UTC)
    event = {**kopf_event(now), "message": "é" * 1024}
    assert problems(CORE_EVENTS, event) == [
        'message: Invalid value: "": can have at most 1024 characters']
