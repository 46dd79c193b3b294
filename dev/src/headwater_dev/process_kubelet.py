"""A kubelet stand-in that really runs each flow-run pod's command as a local process.

The sandbox (``headwater dev``) uses it so that the examples really execute: for every
Headwater pod the operator creates, :class:`ProcessKubelet`

* binds the pod to its node and reports ``Pending``/``ContainerCreating``,
* starts the container's command (``headwater execute``) as a subprocess with the pod's
  environment, in the repository checkout (``cwd`` and ``PYTHONPATH``), with the run
  summary written to a file instead of ``/dev/termination-log`` and results stored under
  the sandbox's state directory,
* mounts the pod's Secret volumes (``secret``, and ``projected`` of Secrets: the
  block secret files the operator gives a pod) as a kubelet does, by reading the Secrets
  through the API and writing their keys as files with the volume's modes — under the
  pod's directory, since the process shares the host's filesystem, so an environment
  variable whose value is a mount path (or a path under one) is pointed there too. A
  Secret that does not exist yet keeps the pod ``ContainerCreating``, as a kubelet's
  failed mount does, until it appears,
* reports ``Running``, streams the output into the pod's log (``kubectl logs``), and
* reports the container's real exit code with the summary as the termination message
  (``FallbackToLogsOnError``: the log tail when the process wrote no summary).

**Volumes** are set up before any container starts: besides Secret volumes, an
``emptyDir`` is a directory under the pod's directory, shared by the pod's containers;
other volume types are not mounted (a warning says so). A container's ``workingDir``
inside a mounted volume is pointed at the host directory like its environment; one
elsewhere is the image's, which the sandbox does not have (the checkout is used).
A terminated pod's volumes are removed, as the kubelet tears them down.

**Init containers** run first, one at a time and in order, each to exit 0 before the
next starts (kubernetes v1.32 pkg/kubelet/kuberuntime/kuberuntime_container.go
``computeInitContainerActions``), with ``status.initContainerStatuses``, the pod
``Pending`` and ``Initialized=False`` meanwhile (:mod:`.podstatus`). One that fails ends
the pod ``Failed`` under ``restartPolicy: Never`` (pkg/kubelet/kubelet_pods.go
``getPhase``); under ``OnFailure``/``Always`` it is restarted after the kubelet's
back-off, 10 s doubling up to 300 s (pkg/kubelet/kubelet.go ``backOffPeriod``,
``MaxContainerBackOff``). Restartable (sidecar) init containers are not supported: such a
pod is reported ``StartError``. An init container's output goes to the pod's log.

Deletion and deadlines behave as on a node: a pod marked for deletion gets SIGTERM and
``deletionGracePeriodSeconds`` to stop, then SIGKILL; a pod running past
``spec.activeDeadlineSeconds`` is stopped the same way and reported ``Failed`` with reason
``DeadlineExceeded``. When the sandbox itself stops, its "node" shuts down: the pods still
running are stopped the same way and reported as a kubelet's graceful node shutdown
reports them (``Failed``, reason ``Terminated``, ``DisruptionTarget``
``TerminationByKubelet``: :func:`podstatus.node_shutdown`). To see the graceful deletion
at all, the kubelet puts a finalizer on the pods it runs (the emulator, like an API
server without a kubelet, would otherwise remove a pod at once) and lifts it once the
process is gone.

**Container images are ignored**: the code that runs is the flow code of this checkout,
with the Python interpreter running the sandbox. That is what makes it a development
tool and not a cluster.

Why a separate HTTP client and not :mod:`headwater_operator.kube`: that module counts
every request in the operator's ``/metrics``; a kubelet's polling is not the operator's
traffic and must not show up there.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import logging
import os
import shutil
import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from headwater import contract

from headwater_dev import podstatus

logger = logging.getLogger(__name__)

JsonObject = dict[str, Any]
LogSink = Callable[[str, str, str], None]
"""``sink(namespace, pod, text)``: where container output goes (the emulator's pod log)."""

FINALIZER = f"{contract.GROUP}/sandbox-kubelet"
POD_SELECTOR = f"{contract.LABEL_MANAGED_BY}={contract.MANAGED_BY_VALUE}"
DEFAULT_GRACE_SECONDS = 30
"""Kubernetes' default ``terminationGracePeriodSeconds``."""
LOG_TAIL_LINES = 80
LOG_TAIL_BYTES = 2048
"""What ``FallbackToLogsOnError`` keeps: the last 80 lines, at most 2048 bytes."""
EXIT_START_ERROR = 128
"""The exit code container runtimes report when the command could not be started."""
DEADLINE_MESSAGE = "Pod was active on the node longer than the specified deadline"
INIT_BACK_OFF_SECONDS = 10.0
MAX_BACK_OFF_SECONDS = 300.0
"""The kubelet's restart back-off: 10 s, doubling, at most 300 s (kubernetes v1.32
pkg/kubelet/kubelet.go ``backOffPeriod`` and ``MaxContainerBackOff``)."""


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


# --- pure helpers -----------------------------------------------------------------------
@dataclass(frozen=True)
class LocalRuntime:
    """Where and how pods run locally.

    ``workdir`` is the checkout (the process's cwd and first ``PYTHONPATH`` entry, so
    entrypoints such as ``examples/flows/hello.py:hello`` resolve); ``state_dir`` holds
    the summaries and ``HEADWATER_HOME``; ``python`` runs the ``headwater`` command.
    """

    workdir: Path
    state_dir: Path
    python: str = sys.executable
    base_env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))

    @property
    def home(self) -> Path:
        """``HEADWATER_HOME`` of every run: results, caches, artifacts, asset records."""
        return self.state_dir / "home"

    def summary_path(self, namespace: str, pod: str) -> Path:
        """Where the pod's run summary goes (its stand-in for ``/dev/termination-log``)."""
        return self.state_dir / "pods" / namespace / pod / "termination-log"

    def init_termination_path(self, namespace: str, pod: str, container: str) -> Path:
        """The termination-message file of init container ``container``."""
        return self.state_dir / "pods" / namespace / pod / "init" / container / \
            "termination-log"

    def volume_path(self, namespace: str, pod: str, volume: str) -> Path:
        """Where the pod's volume ``volume`` is mounted on the host."""
        return self.state_dir / "pods" / namespace / pod / "volumes" / volume


def container_command(container: Mapping[str, Any], python: str) -> list[str]:
    """The argv to run for ``container``: ``command`` + ``args``.

    ``headwater`` is run as ``<python> -m headwater`` so the sandbox's own interpreter and
    SDK run the flow, whatever is (or is not) on ``PATH``.
    """
    argv = [str(part) for part in (container.get("command") or [])]
    argv += [str(part) for part in (container.get("args") or [])]
    if not argv:
        raise ValueError(f"container {container.get('name')!r} has no command: the sandbox "
                         "cannot run an image's default entrypoint; set Flow.spec.command")
    if argv[0] == "headwater":
        return [python, "-m", "headwater", *argv[1:]]
    return argv


def container_env(container: Mapping[str, Any], runtime: LocalRuntime, namespace: str,
                  pod: str, *, summary_path: Path | None = None
                  ) -> tuple[dict[str, str], list[str]]:
    """The process environment for ``container``, and what could not be honoured.

    The host environment is the base (a process needs ``PATH`` and ``HOME``); the pod's
    literal ``env`` values win over it; the sandbox's own paths (summary file, home,
    ``PYTHONPATH``) win over both, because the pod's point at a container's filesystem.
    ``valueFrom`` and ``envFrom`` are not resolved: each is returned as a warning.
    ``summary_path``: the termination-message file (an init container's own).
    """
    env = {key: value for key, value in runtime.base_env.items() if key != "KUBECONFIG"}
    warnings: list[str] = []
    for var in container.get("env") or []:
        if "value" in var:
            env[str(var["name"])] = str(var["value"])
        elif "valueFrom" in var:
            warnings.append(f"pod {namespace}/{pod}: env {var['name']} uses valueFrom, which "
                            "the sandbox does not resolve; the variable is unset")
    if container.get("envFrom"):
        warnings.append(f"pod {namespace}/{pod}: envFrom is not resolved by the sandbox")
    python_path = [str(runtime.workdir), *filter(None, [env.get("PYTHONPATH")])]
    env.update({
        "PYTHONPATH": os.pathsep.join(python_path),
        "PYTHONUNBUFFERED": "1",  # stream logs while the flow runs, not at exit
        contract.ENV_HOME: str(runtime.home),
        contract.ENV_SUMMARY_PATH: str(summary_path or runtime.summary_path(namespace, pod)),
    })
    return env, warnings


@dataclass(frozen=True)
class SecretFile:
    """One file of a Secret volume: ``key`` of Secret ``secret`` at ``path``."""

    secret: str
    key: str | None
    """None: every key of the Secret, each at its own name under ``path``."""
    path: str
    mode: int
    optional: bool = False


def secret_files(volume: Mapping[str, Any]) -> list[SecretFile] | None:
    """The files of a ``secret`` volume or of a ``projected`` one made of Secrets; None
    for any other volume (the sandbox does not mount it).

    Modes as the kubelet applies them (kubernetes pkg/volume/secret/secret.go and
    projected/projected.go ``collectData``): an item's ``mode``, else the volume's
    ``defaultMode`` (the API server defaults it to 0644).
    """
    if isinstance(volume.get("secret"), Mapping):
        source = volume["secret"]
        default = int(source.get("defaultMode", 0o644))
        return _source_files(source, str(source.get("secretName") or ""), default)
    projected = volume.get("projected")
    if not isinstance(projected, Mapping):
        return None
    default = int(projected.get("defaultMode", 0o644))
    files: list[SecretFile] = []
    for entry in projected.get("sources") or ():
        source = entry.get("secret") if isinstance(entry, Mapping) else None
        if not isinstance(source, Mapping):
            return None  # a ConfigMap, the downward API, a token: not mounted here
        files += _source_files(source, str(source.get("name") or ""), default)
    return files


def _source_files(source: Mapping[str, Any], name: str, default: int) -> list[SecretFile]:
    optional = bool(source.get("optional"))
    items = source.get("items")
    if not items:
        return [SecretFile(name, None, "", default, optional)]
    return [SecretFile(name, str(item["key"]), str(item["path"]),
                       int(item.get("mode", default)), optional) for item in items]


def mapped_path(value: str, mounts: Mapping[str, Path]) -> str | None:
    """Where ``value`` is on the host when it is a mount path or a path under one
    (``mounts``: mount path → host directory); None otherwise."""
    for mount_path, host in mounts.items():
        base = mount_path.rstrip("/")
        if value == base or value.startswith(base + "/"):
            return str(host) + value[len(base):]
    return None


def mapped_env(env: Mapping[str, str], mounts: Mapping[str, Path]) -> dict[str, str]:
    """``env`` with each value that is a mount path, or a path under one, pointed at
    where that mount is on the host (``mounts``: mount path → host directory)."""
    return {name: mapped_path(value, mounts) or value for name, value in env.items()}


def container_mounts(container: Mapping[str, Any],
                     volumes: Mapping[str, Path]) -> dict[str, Path]:
    """The container's mounts of the pod's mounted ``volumes`` (name → host directory),
    as mount path → host directory."""
    return {str(mount["mountPath"]): volumes[str(mount.get("name"))]
            for mount in container.get("volumeMounts") or ()
            if str(mount.get("name")) in volumes and mount.get("mountPath")}


def _make_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)


def termination_message(summary: str, exit_code: int, log_tail: str) -> str | None:
    """The container's termination message under ``FallbackToLogsOnError``.

    The summary file's content when there is any (its last 4096 bytes, as the kubelet
    reads it); otherwise, for a failed container only, the tail of its log (what a real
    kubelet does with that policy).
    """
    if summary.strip():
        return podstatus.read_termination_file(summary)
    if exit_code != 0 and log_tail:
        return log_tail
    return None


def tail(text: str, lines: int = LOG_TAIL_LINES, limit: int = LOG_TAIL_BYTES) -> str:
    """The last ``lines`` lines of ``text``, at most ``limit`` bytes (UTF-8, whole chars)."""
    kept = "".join(text.splitlines(keepends=True)[-lines:])
    encoded = kept.encode()
    return encoded[-limit:].decode(errors="ignore") if len(encoded) > limit else kept


def grace_seconds(pod: Mapping[str, Any]) -> int:
    """How long a pod being deleted gets between SIGTERM and SIGKILL.

    ``metadata.deletionGracePeriodSeconds`` (set by the delete request), else
    ``spec.terminationGracePeriodSeconds``, else Kubernetes' default of 30 s.
    """
    meta_grace = (pod.get("metadata") or {}).get("deletionGracePeriodSeconds")
    if isinstance(meta_grace, int) and meta_grace > 0:
        return meta_grace
    spec_grace = (pod.get("spec") or {}).get("terminationGracePeriodSeconds")
    return spec_grace if isinstance(spec_grace, int) and spec_grace >= 0 \
        else DEFAULT_GRACE_SECONDS


def exit_code_of(returncode: int) -> int:
    """A process return code as a container exit code (killed by signal N → 128 + N)."""
    return 128 - returncode if returncode < 0 else returncode


def final_status(now: datetime.datetime, started: datetime.datetime, exit_code: int,
                 message: str | None, *, container: str, image: str,
                 deadline_exceeded: bool = False, containers: int = 1,
                 node_shutdown: bool = False) -> JsonObject:
    """The pod status a kubelet reports once the container has exited.

    ``containers`` (the pod's containers and init containers) sets the message's share
    of the pod's 12 KiB of termination messages.
    """
    if node_shutdown:
        return podstatus.node_shutdown(now, started=started, exit_code=exit_code,
                                       message=message, container=container, image=image)
    status = podstatus.terminated(
        now, exit_code=exit_code, reason="Completed" if exit_code == 0 else "Error",
        message=message, started=started, container=container, image=image,
        containers=containers)
    if deadline_exceeded:
        status.update({"phase": "Failed", "reason": "DeadlineExceeded",
                       "message": DEADLINE_MESSAGE})
    return status


def is_terminal(pod: Mapping[str, Any]) -> bool:
    """Whether the pod's phase is final (nothing left to run)."""
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def pod_key(pod: Mapping[str, Any]) -> tuple[str, str]:
    """``(namespace, name)`` of a pod."""
    meta = pod.get("metadata") or {}
    return str(meta.get("namespace") or "default"), str(meta["name"])


# --- the API, as the kubelet uses it ---------------------------------------------------
class PodApi:
    """The pod calls a scheduler and a kubelet make, over plain HTTP to the (emulated) API
    server."""

    def __init__(self, server: str, session: aiohttp.ClientSession) -> None:
        self.server = server.rstrip("/")
        self.session = session

    def _url(self, namespace: str | None, name: str | None = None,
             subresource: str | None = None) -> str:
        path = f"/api/v1/namespaces/{namespace}/pods" if namespace else "/api/v1/pods"
        return self.server + path + (f"/{name}" if name else "") + (
            f"/{subresource}" if subresource else "")

    async def list(self, namespace: str | None) -> list[JsonObject]:
        """Headwater's pods in ``namespace`` (every namespace when None)."""
        async with self.session.get(self._url(namespace),
                                    params={"labelSelector": POD_SELECTOR}) as response:
            response.raise_for_status()
            items: list[JsonObject] = (await response.json()).get("items") or []
            return items

    async def patch(self, namespace: str, name: str, body: JsonObject,
                    subresource: str | None = None) -> JsonObject | None:
        """Merge-patch the pod (or its status); None when the pod is gone."""
        async with self.session.patch(
                self._url(namespace, name, subresource), json=body,
                headers={"Content-Type": "application/merge-patch+json"}) as response:
            if response.status == 404:
                return None
            response.raise_for_status()
            result: JsonObject = await response.json()
            return result

    async def bind(self, namespace: str, name: str, node: str) -> bool:
        """Assign the pod to ``node`` as the scheduler does, through ``pods/binding`` (a
        pod's ``spec.nodeName`` cannot be updated); False when the pod is gone, being
        deleted or already bound elsewhere."""
        binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name},
                   "target": {"apiVersion": "v1", "kind": "Node", "name": node}}
        async with self.session.post(self._url(namespace, name, "binding"),
                                     json=binding) as response:
            if response.status in (404, 409):
                return False
            response.raise_for_status()
            return True

    async def report(self, namespace: str, name: str, status: JsonObject) -> JsonObject | None:
        """Write the pod's complete status (the kubelet owns it); None when gone."""
        # A kubelet replaces the status; a merge patch with null for the old keys does that.
        current = await self.get(namespace, name)
        if current is None:
            return None
        status = podstatus.with_qos_class_of(status, current)
        body = {key: None for key in current.get("status") or {} if key not in status}
        body.update(status)
        return await self.patch(namespace, name, {"status": body}, subresource="status")

    async def secret_data(self, namespace: str, name: str) -> dict[str, str] | None:
        """The data (base64 values by key) of Secret ``namespace/name``, as the kubelet
        reads it to mount it; None when it does not exist."""
        url = f"{self.server}/api/v1/namespaces/{namespace}/secrets/{name}"
        async with self.session.get(url) as response:
            if response.status == 404:
                return None
            response.raise_for_status()
            data: dict[str, str] = (await response.json()).get("data") or {}
            return data

    async def get(self, namespace: str, name: str) -> JsonObject | None:
        """The pod, or None when it does not exist."""
        async with self.session.get(self._url(namespace, name)) as response:
            if response.status == 404:
                return None
            response.raise_for_status()
            result: JsonObject = await response.json()
            return result


# --- running pods -----------------------------------------------------------------------
@dataclass
class PodProcess:
    """What the kubelet did with one pod: the process, signals sent and how it ended."""

    namespace: str
    name: str
    argv: list[str]
    pid: int | None = None
    signals: list[str] = field(default_factory=list)
    exit_code: int | None = None
    deadline_exceeded: bool = False
    node_shutdown: bool = False
    """Stopped because the sandbox (its node) shuts down."""
    stop_requested: asyncio.Event = field(default_factory=asyncio.Event)
    stop_grace: float = DEFAULT_GRACE_SECONDS
    started_monotonic: float | None = None
    """When the pod started on the node (``activeDeadlineSeconds`` counts from there)."""


class ProcessKubelet:
    """Runs the command of every Headwater pod in ``namespace`` (all when None) locally.

    ``await kubelet.run()`` until :meth:`stop`; :attr:`processes` records every pod run
    (tests read the pid, signals and exit code from it); :attr:`warnings` collects what
    the sandbox could not honour (images, ``valueFrom``), each once.
    """

    def __init__(self, server: str, runtime: LocalRuntime, *,
                 log_sink: LogSink | None = None, namespace: str | None = None,
                 node: str = "sandbox", poll_interval: float = 0.1,
                 clock: Callable[[], datetime.datetime] = _now) -> None:
        self.server = server
        self.runtime = runtime
        self.log_sink = log_sink
        self.namespace = namespace
        self.node = node
        self.poll_interval = poll_interval
        self.clock = clock
        self.processes: dict[tuple[str, str], PodProcess] = {}
        self.warnings: list[str] = []
        self._tasks: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._stopping = asyncio.Event()
        self._api: PodApi | None = None

    def warn(self, message: str) -> None:
        """Record (and log) a limitation once."""
        if message not in self.warnings:
            self.warnings.append(message)
            logger.info("%s", message)

    async def run(self) -> None:
        """Poll the API for pods and drive each one until :meth:`stop` is called."""
        async with aiohttp.ClientSession() as session:
            self._api = PodApi(self.server, session)
            try:
                while not self._stopping.is_set():
                    with contextlib.suppress(aiohttp.ClientError):
                        self._observe(await self._api.list(self.namespace))
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(self.poll_interval):
                            await self._stopping.wait()
            finally:
                await self._stop_processes()

    def stop(self) -> None:
        """Ask :meth:`run` to stop; it terminates the processes still running."""
        self._stopping.set()

    def _observe(self, pods: Sequence[JsonObject]) -> None:
        present = set()
        for pod in pods:
            key = pod_key(pod)
            present.add(key)
            deleting = bool((pod.get("metadata") or {}).get("deletionTimestamp"))
            if key not in self._tasks:
                if not deleting and not is_terminal(pod):
                    self._tasks[key] = asyncio.create_task(self._drive(pod),
                                                           name=f"kubelet-{key[1]}")
            elif deleting:
                self._request_stop(key, grace_seconds(pod))
        for key in set(self._tasks) - present:
            self._request_stop(key, 0)  # removed without waiting for us: kill it now

    def _request_stop(self, key: tuple[str, str], grace: float, *,
                      node_shutdown: bool = False) -> None:
        record = self.processes.get(key)
        if record is not None and not record.stop_requested.is_set():
            record.stop_grace = grace
            record.node_shutdown = node_shutdown
            record.stop_requested.set()

    async def _drive(self, pod: JsonObject) -> None:
        namespace, name = pod_key(pod)
        container = ((pod.get("spec") or {}).get("containers") or [{}])[0]
        record = PodProcess(namespace, name, argv=[])
        self.processes[(namespace, name)] = record
        try:
            await self._run_pod(pod, container, record)
        except aiohttp.ClientError as exc:
            logger.warning("pod %s/%s: lost contact with the API server: %s", namespace, name,
                           exc)
        finally:
            # A terminated pod's volumes are torn down (the kubelet unmounts them; for a
            # Secret volume that is the Secret's copy on the node).
            shutil.rmtree(self.runtime.state_dir / "pods" / namespace / name / "volumes",
                          ignore_errors=True)
            await self._release(namespace, name)

    async def _run_pod(self, pod: JsonObject, container: Mapping[str, Any],
                       record: PodProcess) -> None:
        assert self._api is not None
        namespace, name = record.namespace, record.name
        names = {"container": str(container.get("name") or podstatus.DEFAULT_CONTAINER),
                 "image": str(container.get("image") or podstatus.DEFAULT_IMAGE)}
        finalizers = [*((pod.get("metadata") or {}).get("finalizers") or []), FINALIZER]
        if not await self._api.bind(namespace, name, self.node):
            return
        bound = await self._api.patch(namespace, name, {"metadata": {"finalizers": finalizers}})
        if bound is None or (bound.get("metadata") or {}).get("deletionTimestamp"):
            return
        self.warn(f"image {names['image']} is ignored: the sandbox runs the flow code of "
                  f"{self.runtime.workdir} with {self.runtime.python}")
        pod_started = self.clock()
        record.started_monotonic = time.monotonic()
        await self._api.report(namespace, name, podstatus.scheduled(pod_started, **names))
        volumes = await self._mount_volumes(pod, record)
        if volumes is None:
            return  # deleted while waiting for a Secret to mount
        init_statuses = await self._run_init_containers(pod, record, volumes, names,
                                                        pod_started)
        if init_statuses is None:
            return
        try:
            record.argv = container_command(container, self.runtime.python)
        except ValueError as exc:
            await self._report_start_error(record, str(exc), names)
            return
        env, warnings = container_env(container, self.runtime, namespace, name)
        for warning in warnings:
            self.warn(warning)
        mounts = container_mounts(container, volumes)
        env = mapped_env(env, mounts)
        summary_path = self.runtime.summary_path(namespace, name)
        summary_path.parent.mkdir(parents=True, exist_ok=True)
        summary_path.write_text("", encoding="utf-8")
        self.runtime.home.mkdir(parents=True, exist_ok=True)
        process = await self._start(record, record.argv, env, self._cwd(container, mounts),
                                    names)
        if process is None:
            return
        record.pid = process.pid
        started = self.clock()
        await self._api.report(namespace, name, podstatus.with_init_statuses(
            podstatus.running(started, container=names["container"], image=names["image"]),
            init_statuses))
        output: list[str] = []
        pump = asyncio.create_task(self._pump(process, record, output))
        await self._supervise(process, record, pod)
        await pump
        record.exit_code = exit_code_of(process.returncode or 0)
        message = termination_message(summary_path.read_text(encoding="utf-8"),
                                      record.exit_code, tail("".join(output)))
        await self._api.report(namespace, name, podstatus.with_init_statuses(final_status(
            self.clock(), started, record.exit_code, message,
            deadline_exceeded=record.deadline_exceeded,
            containers=podstatus.container_count(pod),
            node_shutdown=record.node_shutdown and not record.deadline_exceeded, **names),
            init_statuses))

    async def _start(self, record: PodProcess, argv: list[str], env: Mapping[str, str],
                     cwd: Path, names: Mapping[str, str]) -> asyncio.subprocess.Process | None:
        """Start a container's process; None (and ``StartError`` reported) if it cannot."""
        try:
            return await asyncio.create_subprocess_exec(
                *argv, cwd=cwd, env=dict(env),
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
                # Its own session: a Ctrl-C on the sandbox's terminal must not reach the
                # flow; the sandbox stops its processes itself.
                start_new_session=True)
        except OSError as exc:
            await self._report_start_error(record, f"{argv[0]}: {exc.strerror}", names)
            return None

    def _cwd(self, container: Mapping[str, Any], mounts: Mapping[str, Path]) -> Path:
        """The process's working directory: ``workingDir`` when it is inside a mounted
        volume (other paths are the image's, which the sandbox does not have), else the
        checkout."""
        working_dir = container.get("workingDir")
        if working_dir:
            local = mapped_path(str(working_dir), mounts)
            if local is not None:
                return Path(local)
            self.warn(f"container {container.get('name')}: workingDir {working_dir} is in "
                      f"the image; the sandbox runs it in {self.runtime.workdir}")
        return self.runtime.workdir

    async def _mount_volumes(self, pod: JsonObject,
                             record: PodProcess) -> dict[str, Path] | None:
        """Set up the pod's volumes on the host before any container starts (volume name
        → directory): ``emptyDir`` and Secret volumes; None when the pod was stopped
        while a Secret was still missing."""
        volumes: dict[str, Path] = {}
        for volume in (pod.get("spec") or {}).get("volumes") or ():
            volume_name = str(volume.get("name"))
            target = self.runtime.volume_path(record.namespace, record.name, volume_name)
            if isinstance(volume.get("emptyDir"), Mapping):
                _make_dir(target)
                volumes[volume_name] = target
                continue
            files = secret_files(volume)
            if files is None:
                self.warn(f"pod {record.namespace}/{record.name}: volume {volume_name} "
                          "is not mounted by the sandbox (only emptyDir and Secret volumes "
                          "are)")
                continue
            while not await self._write_secret_files(record.namespace, files, target):
                if record.stop_requested.is_set() or self._stopping.is_set():
                    return None
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.poll_interval):
                        await record.stop_requested.wait()
            volumes[volume_name] = target
        return volumes

    # init containers

    async def _run_init_containers(self, pod: Mapping[str, Any], record: PodProcess,
                                   volumes: Mapping[str, Path], names: Mapping[str, str],
                                   pod_started: datetime.datetime) -> list[JsonObject] | None:
        """Run the init containers in order (see the module docstring); their final
        statuses, or None when the pod ended before its containers could start."""
        spec = pod.get("spec") or {}
        inits = spec.get("initContainers") or []
        statuses = [podstatus.init_waiting(str(c.get("name")),
                                           str(c.get("image") or podstatus.DEFAULT_IMAGE))
                    for c in inits]
        restart_policy = spec.get("restartPolicy") or "Always"
        for index, init in enumerate(inits):
            if init.get("restartPolicy") == "Always":
                await self._report_start_error(record, (
                    f"init container {init.get('name')} is a restartable (sidecar) init "
                    "container, which the sandbox does not run"), names)
                return None
            delay = INIT_BACK_OFF_SECONDS
            while True:
                exit_code = await self._run_init(pod, init, index, statuses=statuses,
                                                 record=record, volumes=volumes, names=names,
                                                 pod_started=pod_started)
                if exit_code is None:
                    return None
                if exit_code == 0:
                    break
                if restart_policy == "Never":
                    await self._report_initializing(record, statuses, names, pod_started,
                                                    failed=True)
                    return None
                statuses[index] = podstatus.init_back_off(
                    statuses[index], f"{record.name}_{record.namespace}", delay)
                await self._report_initializing(record, statuses, names, pod_started)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await record.stop_requested.wait()
                if record.stop_requested.is_set():
                    return None
                delay = min(delay * 2, MAX_BACK_OFF_SECONDS)
        return statuses

    async def _report_initializing(self, record: PodProcess, statuses: list[JsonObject],
                                   names: Mapping[str, str], pod_started: datetime.datetime,
                                   *, failed: bool = False) -> None:
        assert self._api is not None
        await self._api.report(record.namespace, record.name, podstatus.initializing(
            self.clock(), statuses, failed=failed, started=pod_started,
            container=names["container"], image=names["image"]))

    async def _run_init(self, pod: Mapping[str, Any], init: Mapping[str, Any], index: int, *,
                        statuses: list[JsonObject], record: PodProcess,
                        volumes: Mapping[str, Path], names: Mapping[str, str],
                        pod_started: datetime.datetime) -> int | None:
        """Run one init container to its end: its exit code, or None when the pod
        ended meanwhile (deleted, or past ``activeDeadlineSeconds``: reported)."""
        assert self._api is not None
        namespace, name = record.namespace, record.name
        init_name = str(init.get("name"))
        image = str(init.get("image") or podstatus.DEFAULT_IMAGE)
        previous = statuses[index]
        restarts = int(previous.get("restartCount") or 0)
        try:
            argv = container_command(init, self.runtime.python)
        except ValueError as exc:
            await self._report_start_error(record, str(exc), names)
            return None
        message_path = self.runtime.init_termination_path(namespace, name, init_name)
        message_path.parent.mkdir(parents=True, exist_ok=True)
        message_path.write_text("", encoding="utf-8")
        env, warnings = container_env(init, self.runtime, namespace, name,
                                      summary_path=message_path)
        for warning in warnings:
            self.warn(warning)
        mounts = container_mounts(init, volumes)
        process = await self._start(record, argv, mapped_env(env, mounts),
                                    self._cwd(init, mounts), names)
        if process is None:
            return None
        record.pid = process.pid
        started = self.clock()
        statuses[index] = podstatus.init_running(
            init_name, image, started, restart_count=restarts,
            last_state=previous.get("lastState") or None)
        await self._report_initializing(record, statuses, names, pod_started)
        output: list[str] = []
        pump = asyncio.create_task(self._pump(process, record, output))
        await self._supervise(process, record, pod)
        await pump
        if record.deadline_exceeded:
            status = podstatus.initializing(self.clock(), statuses, failed=True,
                                            started=pod_started, container=names["container"],
                                            image=names["image"])
            status.update({"reason": "DeadlineExceeded", "message": DEADLINE_MESSAGE})
            await self._api.report(namespace, name, status)
            return None
        if record.stop_requested.is_set():
            return None
        exit_code = exit_code_of(process.returncode or 0)
        message = termination_message(message_path.read_text(encoding="utf-8"), exit_code,
                                      tail("".join(output)))
        statuses[index] = podstatus.init_terminated(
            init_name, image, self.clock(), exit_code=exit_code, started=started,
            message=message, containers=podstatus.container_count(pod), restart_count=restarts)
        return exit_code

    async def _write_secret_files(self, namespace: str, files: Sequence[SecretFile],
                                  target: Path) -> bool:
        """Write ``files`` under ``target``; False when a Secret (or key) it needs is
        missing, as the kubelet's mount fails (the pod stays ``ContainerCreating``)."""
        assert self._api is not None
        contents: list[tuple[Path, bytes, int]] = []
        for file in files:
            data = await self._api.secret_data(namespace, file.secret)
            if data is None or (file.key is not None and file.key not in data):
                if file.optional:
                    continue
                return False
            keys = [file.key] if file.key is not None else sorted(data)
            for key in keys:
                path = target / (file.path if file.key is not None else key)
                contents.append((path, base64.b64decode(data[key]), file.mode))
        for path, content, mode in contents:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(content)
            os.chmod(path, mode)
        return True

    async def _report_start_error(self, record: PodProcess, message: str,
                                  names: Mapping[str, str]) -> None:
        assert self._api is not None
        record.exit_code = EXIT_START_ERROR
        now = self.clock()
        await self._api.report(record.namespace, record.name, podstatus.terminated(
            now, exit_code=EXIT_START_ERROR, reason="StartError", message=message, started=now,
            container=names["container"], image=names["image"]))

    async def _pump(self, process: asyncio.subprocess.Process, record: PodProcess,
                    output: list[str]) -> None:
        """Copy the process's output into the pod log, keeping a tail for the message."""
        assert process.stdout is not None
        while line := await process.stdout.readline():
            text = line.decode(errors="replace")
            output.append(text)
            del output[:-LOG_TAIL_LINES]
            if self.log_sink is not None:
                self.log_sink(record.namespace, record.name, text)

    async def _supervise(self, process: asyncio.subprocess.Process, record: PodProcess,
                         pod: Mapping[str, Any]) -> None:
        """Wait for the process; stop it on deletion or at ``activeDeadlineSeconds``."""
        deadline = (pod.get("spec") or {}).get("activeDeadlineSeconds")
        if deadline is not None and record.started_monotonic is not None:
            # activeDeadlineSeconds counts from the pod's start, init containers included.
            deadline = max(deadline - (time.monotonic() - record.started_monotonic), 0)
        exited = asyncio.create_task(process.wait())
        stop = asyncio.create_task(record.stop_requested.wait())
        try:
            done, _ = await asyncio.wait({exited, stop}, timeout=deadline,
                                         return_when=asyncio.FIRST_COMPLETED)
            if exited in done:
                return
            if stop not in done:
                record.deadline_exceeded = True
                record.stop_grace = grace_seconds({"spec": pod.get("spec") or {}})
            await self._terminate(process, record, record.stop_grace)
        finally:
            stop.cancel()
            await exited

    async def _terminate(self, process: asyncio.subprocess.Process, record: PodProcess,
                         grace: float) -> None:
        """SIGTERM, ``grace`` seconds to exit, then SIGKILL (as a kubelet stops containers)."""
        if process.returncode is not None:
            return
        if grace > 0:
            record.signals.append("SIGTERM")
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(grace):
                    await process.wait()
        if process.returncode is None:
            record.signals.append("SIGKILL")
            with contextlib.suppress(ProcessLookupError):
                process.kill()

    async def _release(self, namespace: str, name: str) -> None:
        """Lift the kubelet's finalizer so a pod being deleted can go."""
        if self._api is None:
            return
        with contextlib.suppress(aiohttp.ClientError):
            pod = await self._api.get(namespace, name)
            if pod is None:
                return
            finalizers = (pod.get("metadata") or {}).get("finalizers") or []
            if FINALIZER in finalizers:
                await self._api.patch(namespace, name, {"metadata": {"finalizers": [
                    f for f in finalizers if f != FINALIZER] or None}})

    async def _stop_processes(self, grace: float = 5.0) -> None:
        """Stop every running process (the sandbox is exiting): SIGTERM, then SIGKILL."""
        for key, task in self._tasks.items():
            if not task.done():
                self._request_stop(key, grace, node_shutdown=True)
        pending = [task for task in self._tasks.values() if not task.done()]
        if pending:
            # Bounded: the grace period plus a little for the last status report.
            _, still = await asyncio.wait(pending, timeout=grace + 2.0)
            for task in still:
                task.cancel()
            await asyncio.gather(*still, return_exceptions=True)
