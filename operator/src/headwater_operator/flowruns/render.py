"""Render the pod manifest for one attempt of a FlowRun.

:func:`render_pod` is pure: the same FlowRun, settings and attempt always give the same
manifest, with the same deterministic name ``<flowrun>-<attempt>``. That is what makes pod
creation idempotent: an operator that restarts, or replays a watch event, creates the
same name again and the API server answers 409, which the caller treats as "already done".

Precedence inside the pod: Flow defaults < Deployment.runTemplate < Headwater's own
fields. Headwater's labels and the SDK contract environment variables always win, because
the operator and the engine rely on them; a restricted security context is the default
and ``runTemplate.securityContext``/``podSecurityContext`` can loosen it key by key.
``runTemplate.podOverrides`` is applied last as a Kubernetes strategic merge patch of the
Pod (:mod:`headwater_operator.strategicmerge`): lists merge by each field's patch merge key
(containers and env by ``name``, volumeMounts by ``mountPath``, ports by
``containerPort``), other lists (tolerations, command) are replaced, and ``$patch``
directives work as with ``kubectl patch --type strategic``.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from headwater import contract

from headwater_operator import strategicmerge
from headwater_operator.api import FlowRun
from headwater_operator.flowruns.inputs import fs_group_for, pod_inputs
from headwater_operator.flowruns.settings import RunSettings
from headwater_operator.flowruns.source import source_pod_parts
from headwater_operator.kubetime import format_time
from headwater_operator.labels import label_value

CONTAINER_NAME = "flow"
DEFAULT_CONTAINER_ANNOTATION = "kubectl.kubernetes.io/default-container"
POD_DEFINITION = "io.k8s.api.core.v1.Pod"
"""The pinned OpenAPI definition whose patch strategies ``podOverrides`` follows."""


class PodOverridesError(ValueError):
    """``runTemplate.podOverrides`` cannot be applied to the rendered pod."""
INJECTED_CONTAINERS_HEADROOM = 2
"""Containers a mutating admission webhook may add after the pod is rendered (a service
mesh adds an init container and a proxy; so do Linkerd and Vault's agent). The operator
cannot see them when it sets the summary budget, so it counts them in advance: a plain
pod (1 + 2 = 3 containers) keeps the full 4096 bytes, and a pod with more injected
containers than this still ends well — its summary is cut at the end, where the fields
that decide the phase are not (see ``podfacts``)."""

DEFAULT_POD_SECURITY_CONTEXT: dict[str, Any] = {
    "runAsNonRoot": True,
    "seccompProfile": {"type": "RuntimeDefault"},
}
"""The Kubernetes "restricted" Pod Security Standard, pod level."""
DEFAULT_CONTAINER_SECURITY_CONTEXT: dict[str, Any] = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "runAsNonRoot": True,
    "seccompProfile": {"type": "RuntimeDefault"},
}
"""The "restricted" Pod Security Standard, container level."""


def pod_name(flowrun_name: str, attempt: int) -> str:
    """The deterministic pod name of ``attempt`` (1-based) of FlowRun ``flowrun_name``."""
    return f"{flowrun_name}-{attempt}"


def merge_patch(base: Any, patch: Any) -> Any:
    """Merge ``patch`` into ``base`` as a JSON merge patch (RFC 7386).

    Objects merge recursively, ``None`` deletes a key, any other value (lists included)
    replaces. Used for the security contexts, which merge key by key; ``podOverrides``
    is a strategic merge patch (:func:`apply_pod_overrides`).
    """
    if isinstance(base, Mapping) and isinstance(patch, Mapping):
        merged = dict(base)
        for key, value in patch.items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = merge_patch(base.get(key), value)
        return merged
    return copy.deepcopy(patch)


def apply_pod_overrides(pod: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``pod`` patched by ``overrides`` as the API server applies a strategic merge patch
    to a Pod; :class:`PodOverridesError` says why a patch cannot apply."""
    try:
        return strategicmerge.strategic_merge(POD_DEFINITION, pod, overrides)
    except strategicmerge.StrategicMergeError as exc:
        raise PodOverridesError(
            f"runTemplate.podOverrides is not a valid strategic merge patch of a Pod: "
            f"{exc.message}") from exc


def _labels(run: FlowRun, settings: RunSettings, attempt: int) -> dict[str, str]:
    labels = dict(settings.deployment.spec.run_template.labels) if settings.deployment else {}
    run_labels = run.metadata.labels or {}
    labels.update(
        {
            contract.LABEL_MANAGED_BY: contract.MANAGED_BY_VALUE,
            contract.LABEL_FLOW_RUN: label_value(run.metadata.name or ""),
            contract.LABEL_FLOW: label_value(settings.flow.metadata.name or ""),
            contract.LABEL_ATTEMPT: str(attempt),
        }
    )
    if settings.deployment_name:
        labels[contract.LABEL_DEPLOYMENT] = label_value(settings.deployment_name)
    if contract.LABEL_SCHEDULE in run_labels:
        labels[contract.LABEL_SCHEDULE] = label_value(run_labels[contract.LABEL_SCHEDULE])
    return labels


def _annotations(run: FlowRun, settings: RunSettings, scheduled: datetime) -> dict[str, str]:
    annotations = (
        dict(settings.deployment.spec.run_template.annotations) if settings.deployment else {}
    )
    # With an injected sidecar, `kubectl logs <pod>` (and `kubectl exec`) pick this
    # container rather than the first one (kubectl pkg/polymorphichelpers
    # logsforobject.go reads kubectl.kubernetes.io/default-container).
    annotations.setdefault(DEFAULT_CONTAINER_ANNOTATION, CONTAINER_NAME)
    annotations[contract.ANNOTATION_SCHEDULED_TIME] = format_time(scheduled)
    if run.spec.trigger is not None:
        annotations[contract.ANNOTATION_TRIGGER] = run.spec.trigger.value
    return annotations


def _contract_env(
    run: FlowRun, settings: RunSettings, attempt: int, scheduled: datetime
) -> list[dict[str, Any]]:
    values = {
        contract.ENV_ENTRYPOINT: settings.flow.spec.entrypoint,
        contract.ENV_PARAMETERS: json.dumps(settings.parameters, sort_keys=True, default=str),
        contract.ENV_FLOW_RUN_NAME: run.metadata.name or "",
        contract.ENV_FLOW_RUN_ID: run.metadata.uid or "",
        contract.ENV_NAMESPACE: run.metadata.namespace or "",
        contract.ENV_FLOW_NAME: settings.flow.metadata.name or "",
        contract.ENV_DEPLOYMENT_NAME: settings.deployment_name,
        contract.ENV_SCHEDULE_NAME: (run.metadata.labels or {}).get(contract.LABEL_SCHEDULE, ""),
        contract.ENV_SCHEDULED_TIME: format_time(scheduled),
        contract.ENV_ATTEMPT: str(attempt),
    }
    deployment = settings.deployment
    if deployment is not None:
        # runtime.deployment.id and .version in the pod (headwater.runtime.deployment).
        if deployment.metadata.uid:
            values[contract.ENV_DEPLOYMENT_ID] = deployment.metadata.uid
        if deployment.metadata.generation is not None:
            values[contract.ENV_DEPLOYMENT_VERSION] = str(deployment.metadata.generation)
    storage = deployment.spec.result_storage if deployment else None
    if storage is not None:
        values[contract.ENV_RESULT_STORAGE] = storage.url
    if settings.ui_url:
        values[contract.ENV_UI_URL] = settings.ui_url
    if settings.run_store is not None:
        # Set even when it equals the result storage root: the pod's record goes where
        # status.runRecords says it is, whatever the SDK's own fallback would be.
        values[contract.ENV_RUN_STORE] = settings.run_store
    return [{"name": name, "value": value} for name, value in values.items()]


def _env(run: FlowRun, settings: RunSettings, attempt: int,
         scheduled: datetime) -> list[dict[str, Any]]:
    """User env (Flow < runTemplate, by name) first, then the contract's, which win."""
    by_name: dict[str, dict[str, Any]] = {}
    template_env = settings.deployment.spec.run_template.env if settings.deployment else []
    for user_var in [*settings.flow.spec.env, *template_env]:
        by_name[user_var.name] = _dump(user_var)
    inputs_env, _, _ = pod_inputs(settings.inputs)
    for var in [*_contract_env(run, settings, attempt, scheduled), *inputs_env]:
        by_name[var["name"]] = var
    return list(by_name.values())


def _dump(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json", by_alias=True, exclude_none=True)
    if isinstance(value, list):
        return [_dump(item) for item in value]
    return value


def _container(run: FlowRun, settings: RunSettings, attempt: int,
               scheduled: datetime) -> dict[str, Any]:
    flow = settings.flow.spec
    template = settings.deployment.spec.run_template if settings.deployment else None
    container: dict[str, Any] = {
        "name": CONTAINER_NAME,
        "image": flow.image,
        "command": list(flow.command),
        "env": _env(run, settings, attempt, scheduled),
        "terminationMessagePath": contract.TERMINATION_MESSAGE_PATH,
        # The engine writes the run summary there; if it never got that far, the log tail
        # becomes the message, so the Crashed status can show the user what went wrong.
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "securityContext": merge_patch(
            DEFAULT_CONTAINER_SECURITY_CONTEXT,
            template.security_context if template and template.security_context else {},
        ),
    }
    if flow.image_pull_policy is not None:
        container["imagePullPolicy"] = flow.image_pull_policy.value
    resources = template.resources if template and template.resources else flow.resources
    if resources is not None:
        container["resources"] = _dump(resources)
    if template and template.env_from:
        container["envFrom"] = _dump(template.env_from)
    mounts = _dump(template.volume_mounts) if template else []
    _, _, blocks_mount = pod_inputs(settings.inputs)
    if blocks_mount is not None:
        mounts.append(blocks_mount)
    if mounts:
        container["volumeMounts"] = mounts
    return container


def _pod_spec(run: FlowRun, settings: RunSettings, attempt: int,
              scheduled: datetime) -> dict[str, Any]:
    template = settings.deployment.spec.run_template if settings.deployment else None
    security_context = merge_patch(
        DEFAULT_POD_SECURITY_CONTEXT,
        template.pod_security_context if template and template.pod_security_context else {},
    )
    _, blocks_volume, _ = pod_inputs(settings.inputs)
    if blocks_volume is not None:
        security_context.update(fs_group_for(security_context))
    spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "containers": [_container(run, settings, attempt, scheduled)],
        "securityContext": security_context,
    }
    if settings.timeout_seconds is not None:
        spec["activeDeadlineSeconds"] = settings.timeout_seconds
    volumes = _dump(template.volumes) if template else []
    if blocks_volume is not None:
        volumes.append(blocks_volume)
    if volumes:
        spec["volumes"] = volumes
    if template is None:
        return spec
    optional = {
        "serviceAccountName": template.service_account_name,
        "nodeSelector": template.node_selector or None,
        "tolerations": _dump(template.tolerations) or None,
        "affinity": template.affinity,
        "imagePullSecrets": _dump(template.image_pull_secrets) or None,
        "priorityClassName": template.priority_class_name,
    }
    spec.update({key: value for key, value in optional.items() if value is not None})
    return spec


def _add_source(spec: dict[str, Any], run: FlowRun, settings: RunSettings) -> None:
    """``Flow.spec.source``: the fetching init container, the shared volume, and the
    flow container running from the checkout, pinned to what attempt 1 fetched."""
    container = spec["containers"][0]
    parts = source_pod_parts(settings.flow.spec, run.status.source, container)
    if parts is None:
        return
    spec["initContainers"] = parts["initContainers"]
    spec["volumes"] = [*spec.get("volumes", []), *parts["volumes"]]
    container["volumeMounts"] = [*container.get("volumeMounts", []), *parts["volumeMounts"]]
    container["env"] = [*container["env"], *parts["env"]]
    container["workingDir"] = parts["workingDir"]


def render_pod(run: FlowRun, settings: RunSettings, attempt: int,
               scheduled: datetime) -> dict[str, Any]:
    """The complete core/v1 Pod manifest for ``attempt`` (1-based) of ``run``.

    ``scheduled`` is the run's scheduled time (``status.scheduledTime``), passed in so
    every attempt sees the same instant.
    """
    name = run.metadata.name or ""
    pod: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": pod_name(name, attempt),
            "namespace": run.metadata.namespace,
            "labels": _labels(run, settings, attempt),
            "annotations": _annotations(run, settings, scheduled),
            "ownerReferences": [
                {
                    "apiVersion": contract.API_VERSION,
                    "kind": "FlowRun",
                    "name": name,
                    "uid": run.metadata.uid,
                    "controller": True,
                    # Not blocking: where kube-apiserver runs the
                    # OwnerReferencesPermissionEnforcement admission plugin (OpenShift by
                    # default), blockOwnerDeletion: true needs `update` on
                    # flowruns/finalizers (kubernetes plugin/pkg/admission/gc/
                    # gc_admission.go), and without it every pod create is 403. What is
                    # given up: a *foreground* deletion of the FlowRun no longer waits for
                    # its pod to be gone (kube-controller-manager pkg/controller/
                    # garbagecollector/garbagecollector.go processDeletingDependentsItem
                    # waits only for blocking dependents; the pod is still collected once
                    # its owner is gone). Headwater itself deletes runs in the background.
                    "blockOwnerDeletion": False,
                }
            ],
        },
        "spec": _pod_spec(run, settings, attempt, scheduled),
    }
    _add_source(pod["spec"], run, settings)
    template = settings.deployment.spec.run_template if settings.deployment else None
    if template is not None and template.pod_overrides:
        pod = apply_pod_overrides(pod, template.pod_overrides)
        # Identity fields are not the user's to override: they make creation idempotent
        # and let the operator find and garbage-collect the pod.
        metadata = pod.setdefault("metadata", {})
        metadata["name"] = pod_name(name, attempt)
        metadata["namespace"] = run.metadata.namespace
        labels = metadata.get("labels")
        metadata["labels"] = {**(labels if isinstance(labels, Mapping) else {}),
                              **_labels(run, settings, attempt)}
    return _with_summary_budget(pod)


def summary_budget(pod: Mapping[str, Any]) -> int:
    """The run summary's byte budget in ``pod``: its share of the 12 KiB of termination
    messages the kubelet keeps for all containers and init containers, counting
    :data:`INJECTED_CONTAINERS_HEADROOM` more than the manifest shows."""
    spec = pod.get("spec") or {}
    containers = len(spec.get("containers") or []) + len(spec.get("initContainers") or [])
    return contract.termination_message_cap(containers + INJECTED_CONTAINERS_HEADROOM)


def _with_summary_budget(pod: dict[str, Any]) -> dict[str, Any]:
    """Tell the engine its budget; set last, when ``podOverrides`` added its containers."""
    var = {"name": contract.ENV_SUMMARY_MAX_BYTES, "value": str(summary_budget(pod))}
    for container in pod["spec"]["containers"]:
        if container.get("name") == CONTAINER_NAME:
            env = [item for item in container.get("env") or []
                   if item.get("name") != var["name"]]
            container["env"] = [*env, var]
    return pod
