"""The pod parts of ``Flow.spec.source``, and reading back what the init container fetched.

A Flow with a ``source`` gets, in every attempt's pod (:func:`source_pod_parts`):

* an init container :data:`~headwater.contract.SOURCE_CONTAINER_NAME` running
  ``headwater fetch-source`` in the Flow's image, with the flow container's own
  environment (so storage credentials that work for results work for a bundle), the
  security context of the flow container and, for ``source.git.credentials``, the
  Secret mounted read-only — into that container only;
* an ``emptyDir`` shared with the flow container, whose working directory becomes the
  checkout (``source.git.path`` inside it).

Reproducibility: the first attempt's init container resolves the ref and writes what it
fetched as its termination message; :func:`fetched_source` reads it back and the
operator records it in ``FlowRun.status.source``. Every later attempt's request
(:func:`source_request`) names that commit (or the bundle's digest), so a retry runs
exactly the code of attempt 1 even when the branch moved or the Flow was edited.

All four functions are pure (unit-tested in tests/unit/operator/test_flowrun_source.py).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from headwater import contract
from pydantic import ValidationError

from headwater_operator.api.flow import FlowSpec
from headwater_operator.api.source import SourceStatus

SOURCE_VOLUME = "headwater-source"
CREDENTIALS_VOLUME = "headwater-source-credentials"


def source_request(spec: FlowSpec, pinned: SourceStatus | None) -> dict[str, Any] | None:
    """The ``HEADWATER_SOURCE`` object for an attempt; None without ``spec.source``.

    ``pinned`` (``FlowRun.status.source``) wins over the Flow: its URL, ref, path and
    commit (or digest) are what attempt 1 ran.
    """
    source = spec.source
    if source is None:
        return None
    if source.git is not None:
        git: dict[str, Any] = {"url": source.git.url, "ref": source.git.ref}
        if source.git.path:
            git["path"] = source.git.path
        if pinned is not None and pinned.pinned_ref is not None:
            git = {"url": pinned.url, "ref": pinned.ref or pinned.pinned_ref,
                   "commit": pinned.pinned_ref}
            if pinned.path:
                git["path"] = pinned.path
        return {"git": git}
    assert source.bundle is not None  # FlowSource validates exactly one
    bundle: dict[str, Any] = {"url": source.bundle.url}
    if source.bundle.sha256:
        bundle["sha256"] = source.bundle.sha256
    if pinned is not None and pinned.digest and pinned.digest.startswith("sha256:"):
        bundle = {"url": pinned.url, "sha256": pinned.digest.removeprefix("sha256:")}
    return {"bundle": bundle}


def working_dir(request: Mapping[str, Any]) -> str:
    """The flow container's working directory: the checkout, or its ``path``."""
    base = f"{contract.SOURCE_DIR_DEFAULT}/{contract.SOURCE_CODE_DIR}"
    path = (request.get("git") or {}).get("path")
    return f"{base}/{path.strip('/')}" if path else base


def source_pod_parts(spec: FlowSpec, pinned: SourceStatus | None,
                     flow_container: Mapping[str, Any]) -> dict[str, Any] | None:
    """What a source adds to the pod: ``initContainers``, ``volumes``, and the flow
    container's ``volumeMounts``, ``env`` and ``workingDir``. None without a source."""
    request = source_request(spec, pinned)
    if request is None:
        return None
    mount = {"name": SOURCE_VOLUME, "mountPath": contract.SOURCE_DIR_DEFAULT}
    dir_env = {"name": contract.ENV_SOURCE_DIR, "value": contract.SOURCE_DIR_DEFAULT}
    user_env = [var for var in flow_container.get("env") or []
                if not str(var.get("name", "")).startswith("HEADWATER_")]
    init: dict[str, Any] = {
        "name": contract.SOURCE_CONTAINER_NAME,
        "image": flow_container["image"],
        "command": ["headwater", "fetch-source"],
        "env": [*user_env, dir_env,
                {"name": contract.ENV_SOURCE,
                 "value": json.dumps(request, sort_keys=True, separators=(",", ":"))}],
        "volumeMounts": [mount],
        "terminationMessagePath": contract.TERMINATION_MESSAGE_PATH,
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    for key in ("imagePullPolicy", "securityContext", "resources", "envFrom"):
        if key in flow_container:
            init[key] = flow_container[key]
    volumes: list[dict[str, Any]] = [{"name": SOURCE_VOLUME, "emptyDir": {}}]
    git = spec.source.git if spec.source else None
    if git is not None and git.credentials is not None:
        init["env"].append({"name": contract.ENV_SOURCE_CREDENTIALS_DIR,
                            "value": contract.SOURCE_CREDENTIALS_DIR_DEFAULT})
        init["volumeMounts"].append({"name": CREDENTIALS_VOLUME, "readOnly": True,
                                     "mountPath": contract.SOURCE_CREDENTIALS_DIR_DEFAULT})
        volumes.append({"name": CREDENTIALS_VOLUME,
                        "secret": {"secretName": git.credentials.secret_ref.name}})
    return {"initContainers": [init], "volumes": volumes, "volumeMounts": [mount],
            "env": [dir_env], "workingDir": working_dir(request)}


def fetched_source(message: str | None) -> dict[str, Any] | None:
    """``FlowRun.status.source`` from the init container's termination message, or None
    when the message is not a fetch record (the init container failed, or something
    else wrote it)."""
    if not message:
        return None
    try:
        status = SourceStatus.model_validate(json.loads(message))
    except (ValueError, ValidationError):
        return None
    if status.pinned_ref is None and not (status.digest or "").startswith("sha256:"):
        return None
    return status.model_dump(mode="json", by_alias=True, exclude_none=True)
