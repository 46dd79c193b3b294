"""Pods as the Kubernetes 1.32 API server defaults and validates them.

Source: kubernetes ``pkg/apis/core/validation/validation.go`` (``ValidatePodCreate``,
``validatePodMetadataAndSpec``, ``ValidatePodSpec``, ``ValidateVolumes``,
``validateContainers``, ``validateInitContainers``, ``validateContainerCommon``,
``validateContainerPorts``, ``ValidateEnv``, ``ValidateEnvFrom``, ``ValidateVolumeMounts``,
``validateResourceRequirements``, ``ValidateSecurityContext``,
``validatePodSpecSecurityContext``, ``ValidateTolerations``, ``ValidatePodUpdate``,
``ValidatePodStatusUpdate``) and ``pkg/apis/core/v1/defaults.go`` (the defaults applied
before validation, without which an omitted ``protocol`` or ``terminationMessagePolicy``
would read as missing). The copy read is newer than 1.32; gates that changed since (e.g.
``RelaxedEnvironmentVariableValidation``, pod-level resources) are taken at their 1.32
defaults (off).

Implemented, by family: metadata (core rules); container names (DNS labels, unique across
containers and init containers), ``image`` required and unpadded,
``terminationMessagePolicy``, ``imagePullPolicy``, ports (name, number, protocol), env
(names, ``valueFrom`` sources and selectors), ``envFrom``, volume mounts (volume exists,
path required and unique, ``subPath``), resources (names, quantities, non-negative,
integers, requests <= limits), probes and lifecycle handlers, container and pod security
contexts (ids, seccomp, capabilities vs. privilege escalation, sysctls names), volumes
(name, exactly one source, emptyDir/hostPath/secret/configMap/PVC/downwardAPI/projected/
CSI/ephemeral details), ``restartPolicy``, ``dnsPolicy``, ``nodeSelector``, tolerations,
``imagePullSecrets``, ``serviceAccountName``, ``nodeName``, ``activeDeadlineSeconds``,
``hostname``/``subdomain``, ``priorityClassName``, ``readinessGates``, ``schedulingGates``,
``preemptionPolicy``; ephemeral containers refused on create; on update the spec's
immutability except images, ``activeDeadlineSeconds`` (only down), added tolerations and
removed scheduling gates; on status writes the metadata rules, ``nodeName``, ``qosClass``
and custom condition types.

Not implemented (accepted as a real server would refuse them): affinity and topology
spread constraints, ``dnsConfig``, host aliases, ``os``/Windows options, resize policies,
resource claims, AppArmor/seccomp annotations, volume sources other than those listed
(only counted), host-port conflicts. The ``Forbidden`` message of a changed pod spec ends
with go-cmp's diff, which go-cmp deliberately randomises: only its first line is
reproduced. ``privileged: true`` is allowed (``--allow-privileged``, which kind and
kubeadm clusters set).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from headwater_dev.builtins import names, objectmeta
from headwater_dev.builtins.objectmeta import GoSyntax
from headwater_dev.builtins.quantity import QuantityError
from headwater_dev.builtins.quantity import parse as parse_quantity
from headwater_dev.fielderrors import (
    FieldError,
    duplicate,
    forbidden,
    format_path,
    go_quote,
    invalid,
    not_found,
    not_supported,
    required,
    too_long,
)

FILE_MODE_ERROR: Final = "must be a number between 0 and 0777 (octal), both inclusive"
MORE_THAN_ONE_VOLUME: Final = "may not specify more than 1 volume type"
RESTART_POLICIES: Final = ("Always", "OnFailure", "Never")
DNS_POLICIES: Final = ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None")
PULL_POLICIES: Final = ("Always", "IfNotPresent", "Never")
PROTOCOLS: Final = ("SCTP", "TCP", "UDP")
TERMINATION_MESSAGE_POLICIES: Final = ("File", "FallbackToLogsOnError")
SECCOMP_TYPES: Final = ("Localhost", "RuntimeDefault", "Unconfined")
TAINT_EFFECTS: Final = ("NoSchedule", "PreferNoSchedule", "NoExecute")
HOST_PATH_TYPES: Final = ("", "BlockDevice", "CharDevice", "Directory", "DirectoryOrCreate",
                          "File", "FileOrCreate", "Socket")
STANDARD_CONTAINER_RESOURCES: Final = frozenset({"cpu", "memory", "ephemeral-storage"})
UPDATABLE_POD_SPEC_FIELDS: Final = (
    "`spec.containers[*].image`,`spec.initContainers[*].image`,"
    "`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing "
    "tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was "
    "previously negative)")
ENV_FIELD_PATHS: Final = ("metadata.name", "metadata.namespace", "metadata.uid",
                          "spec.nodeName", "spec.serviceAccountName", "status.hostIP",
                          "status.hostIPs", "status.podIP", "status.podIPs")
VOLUME_FIELD_PATHS: Final = ("metadata.annotations", "metadata.labels", "metadata.name",
                             "metadata.namespace", "metadata.uid")
RESOURCE_FIELD_PATHS: Final = ("limits.cpu", "limits.ephemeral-storage", "limits.memory",
                               "requests.cpu", "requests.ephemeral-storage", "requests.memory")
MAX_INT32: Final = 2**31 - 1

Errors = list[FieldError]


def _p(*parts: str | int) -> str:
    return format_path(parts)


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> Sequence[Any]:
    return value if isinstance(value, list) else []


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


# --- defaulting (core/v1 defaults.go) -----------------------------------------------------
def default_pod(pod: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``pod`` with the defaults the API server sets before validating it."""
    result: dict[str, Any] = copy.deepcopy(dict(pod))
    spec = result.setdefault("spec", {})
    if not isinstance(spec, dict):
        return result
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("restartPolicy", "Always")
    if spec.get("securityContext") is None:
        spec["securityContext"] = {}
    if spec.get("terminationGracePeriodSeconds") is None:
        spec["terminationGracePeriodSeconds"] = 30
    spec.setdefault("schedulerName", "default-scheduler")
    if spec.get("enableServiceLinks") is None:
        spec["enableServiceLinks"] = True
    for volume in _list(spec.get("volumes")):
        if isinstance(volume, dict):
            _default_volume(volume)
    for key in ("containers", "initContainers", "ephemeralContainers"):
        for container in _list(spec.get(key)):
            if isinstance(container, dict):
                _default_container(container, host_network=spec.get("hostNetwork") is True,
                                   requests_from_limits=key != "ephemeralContainers")
    return result


def _default_volume(volume: dict[str, Any]) -> None:
    if not any(value is not None for key, value in volume.items() if key != "name"):
        volume["emptyDir"] = {}
    for source in ("secret", "configMap", "downwardAPI", "projected"):
        if isinstance(volume.get(source), dict) and volume[source].get("defaultMode") is None:
            volume[source]["defaultMode"] = 420
    if isinstance(volume.get("hostPath"), dict) and volume["hostPath"].get("type") is None:
        volume["hostPath"]["type"] = ""
    for item in _list(_map(volume.get("projected")).get("sources")):
        token = _map(item).get("serviceAccountToken")
        if isinstance(token, dict) and token.get("expirationSeconds") is None:
            token["expirationSeconds"] = 3600
    for item in _list(_map(volume.get("downwardAPI")).get("items")):
        _default_field_ref(_map(item).get("fieldRef"))


def _image_tag(image: str) -> str:
    # pkg/util/parsers ParseImageName: a digest means no tag, no tag means "latest".
    if "@" in image:
        return ""
    last = image.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else "latest"


def _default_container(container: dict[str, Any], *, host_network: bool,
                       requests_from_limits: bool) -> None:
    if not container.get("imagePullPolicy"):
        latest = _image_tag(_str(container.get("image"))) == "latest"
        container["imagePullPolicy"] = "Always" if latest else "IfNotPresent"
    if not container.get("terminationMessagePath"):
        container["terminationMessagePath"] = "/dev/termination-log"
    if not container.get("terminationMessagePolicy"):
        container["terminationMessagePolicy"] = "File"
    for port in _list(container.get("ports")):
        if isinstance(port, dict):
            if not port.get("protocol"):
                port["protocol"] = "TCP"
            if host_network and not port.get("hostPort"):
                port["hostPort"] = port.get("containerPort")
    for probe_key in ("livenessProbe", "readinessProbe", "startupProbe"):
        probe = container.get(probe_key)
        if isinstance(probe, dict):
            for key, value in (("timeoutSeconds", 1), ("periodSeconds", 10),
                               ("successThreshold", 1), ("failureThreshold", 3)):
                if not probe.get(key):
                    probe[key] = value
            _default_http_get(probe.get("httpGet"))
    for handler in _map(container.get("lifecycle")).values():
        _default_http_get(_map(handler).get("httpGet"))
    for var in _list(container.get("env")):
        _default_field_ref(_map(_map(var).get("valueFrom")).get("fieldRef"))
    resources = container.get("resources")
    if requests_from_limits and isinstance(resources, dict) \
            and isinstance(resources.get("limits"), dict):
        requests = resources.setdefault("requests", {})
        if isinstance(requests, dict):
            for name, value in resources["limits"].items():
                requests.setdefault(name, value)


def _default_http_get(action: Any) -> None:
    if isinstance(action, dict):
        if not action.get("path"):
            action["path"] = "/"
        if not action.get("scheme"):
            action["scheme"] = "HTTP"


def _default_field_ref(ref: Any) -> None:
    if isinstance(ref, dict) and not ref.get("apiVersion"):
        ref["apiVersion"] = "v1"


# --- paths -------------------------------------------------------------------------------------
def _path_no_backsteps(target: str, path: str) -> Errors:
    if ".." in target.replace("\\", "/").split("/"):
        return [invalid(path, target, "must not contain '..'")]
    return []


def _local_descending_path(target: str, path: str) -> Errors:
    errors = []
    if target.startswith("/"):
        errors.append(invalid(path, target, "must be a relative path"))
    return errors + _path_no_backsteps(target, path)


def _local_non_reserved_path(target: str, path: str) -> Errors:
    errors = _local_descending_path(target, path)
    if target.startswith("..") and not target.startswith("../"):
        errors.append(invalid(path, target, "must not start with '..'"))
    return errors


def _file_mode(value: Any, path: str) -> Errors:
    if isinstance(value, int) and not 0 <= value <= 0o777:
        return [invalid(path, value, FILE_MODE_ERROR)]
    return []


def _key_to_path(item: Mapping[str, Any], path: str) -> Errors:
    errors = []
    if not _str(item.get("key")):
        errors.append(required(_p(path, "key")))
    target = _str(item.get("path"))
    if not target:
        errors.append(required(_p(path, "path")))
    errors += _local_non_reserved_path(target, _p(path, "path"))
    return errors + _file_mode(item.get("mode"), _p(path, "mode"))


# --- volumes -------------------------------------------------------------------------------
# validateVolumeSource's order, and the path each "more than one" error names (sic).
_VOLUME_SOURCES: Final = (
    ("emptyDir", "emptyDir"), ("hostPath", "hostPath"), ("gitRepo", "gitRepo"),
    ("gcePersistentDisk", "gcePersistentDisk"), ("awsElasticBlockStore", "awsElasticBlockStore"),
    ("secret", "secret"), ("nfs", "nfs"), ("iscsi", "iscsi"), ("glusterfs", "glusterfs"),
    ("flocker", "flocker"), ("persistentVolumeClaim", "persistentVolumeClaim"), ("rbd", "rbd"),
    ("cinder", "cinder"), ("cephfs", "cephFS"), ("quobyte", "quobyte"),
    ("downwardAPI", "downwarAPI"), ("fc", "fc"), ("flexVolume", "flexVolume"),
    ("configMap", "configMap"), ("azureFile", "azureFile"), ("vsphereVolume", "vsphereVolume"),
    ("photonPersistentDisk", "photonPersistentDisk"), ("portworxVolume", "portworxVolume"),
    ("azureDisk", "azureDisk"), ("storageos", "storageos"), ("projected", "projected"),
    ("scaleIO", "scaleIO"), ("csi", "csi"), ("ephemeral", "ephemeral"), ("image", "image"),
)


def validate_volumes(volumes: Any, path: str, pod_name: str) -> tuple[dict[str, Any], Errors]:
    """``ValidateVolumes``: the valid volumes by name, and the errors."""
    errors: Errors = []
    valid: dict[str, Any] = {}
    for index, item in enumerate(_list(volumes)):
        volume = _map(item)
        at = _p(path, index)
        name = _str(volume.get("name"))
        problems = _volume_source(volume, at, name, pod_name)
        if not name:
            problems.append(required(_p(at, "name")))
        else:
            problems += [invalid(_p(at, "name"), name, m) for m in names.is_dns1123_label(name)]
        if name in valid:
            problems.append(duplicate(_p(at, "name"), name))
        if problems:
            errors += problems
        else:
            valid[name] = volume
    return valid, errors


def _volume_source(volume: Mapping[str, Any], path: str, name: str, pod_name: str) -> Errors:
    errors: Errors = []
    count = 0
    for key, more_path in _VOLUME_SOURCES:
        source = volume.get(key)
        if source is None:
            continue
        if count:
            errors.append(forbidden(_p(path, more_path), MORE_THAN_ONE_VOLUME))
            continue
        count += 1
        errors += _one_source(key, _map(source), _p(path, key), name, pod_name)
    if not count:
        errors.append(required(path, "must specify a volume type"))
    return errors


def _one_source(key: str, source: Mapping[str, Any], path: str, name: str,
                pod_name: str) -> Errors:
    checks: dict[str, Callable[[], Errors]] = {
        "emptyDir": lambda: _empty_dir(source, path),
        "hostPath": lambda: _host_path(source, path),
        "secret": lambda: _secret_or_config_map(source, path, "secretName"),
        "configMap": lambda: _secret_or_config_map(source, path, "name"),
        "persistentVolumeClaim": lambda: (
            [] if _str(source.get("claimName")) else [required(_p(path, "claimName"))]),
        "downwardAPI": lambda: _downward_api(source, path),
        "projected": lambda: _projected(source, path),
        "csi": lambda: _csi_driver(_str(source.get("driver")), _p(path, "driver")),
        "ephemeral": lambda: _ephemeral(source, path, name, pod_name),
        "nfs": lambda: _nfs(source, path),
    }
    check = checks.get(key)
    return check() if check else []


def _empty_dir(source: Mapping[str, Any], path: str) -> Errors:
    limit = source.get("sizeLimit")
    if isinstance(limit, (str, int, float)) and not isinstance(limit, bool):
        try:
            if parse_quantity(str(limit)).is_negative():
                return [forbidden(_p(path, "sizeLimit"),
                                  "SizeLimit field must be a valid resource quantity")]
        except QuantityError:
            return []
    return []


def _host_path(source: Mapping[str, Any], path: str) -> Errors:
    target = _str(source.get("path"))
    if not target:
        return [required(_p(path, "path"))]
    errors = _path_no_backsteps(target, _p(path, "path"))
    kind = source.get("type")
    if isinstance(kind, str) and kind not in HOST_PATH_TYPES:
        errors.append(not_supported(_p(path, "type"), kind, HOST_PATH_TYPES))
    return errors


def _secret_or_config_map(source: Mapping[str, Any], path: str, name_key: str) -> Errors:
    errors = [] if _str(source.get(name_key)) else [required(_p(path, name_key))]
    errors += _file_mode(source.get("defaultMode"), _p(path, "defaultMode"))
    for index, item in enumerate(_list(source.get("items"))):
        errors += _key_to_path(_map(item), _p(path, "items", index))
    return errors


def _downward_api(source: Mapping[str, Any], path: str) -> Errors:
    errors = _file_mode(source.get("defaultMode"), _p(path, "defaultMode"))
    for item in _list(source.get("items")):
        errors += _downward_api_file(_map(item), path)
    return errors


def _downward_api_file(item: Mapping[str, Any], path: str) -> Errors:
    errors: Errors = []
    target = _str(item.get("path"))
    if not target:
        errors.append(required(_p(path, "path")))
    errors += _local_non_reserved_path(target, _p(path, "path"))
    field_ref, resource_ref = item.get("fieldRef"), item.get("resourceFieldRef")
    if field_ref is not None:
        errors += _object_field_selector(_map(field_ref), VOLUME_FIELD_PATHS,
                                         _p(path, "fieldRef"))
        if resource_ref is not None:
            errors.append(invalid(path, "resource", "fieldRef and resourceFieldRef can not be "
                                                    "specified simultaneously"))
    elif resource_ref is not None:
        errors += _resource_field_selector(_map(resource_ref), _p(path, "resourceFieldRef"),
                                           volume=True)
    else:
        errors.append(required(path, "one of fieldRef and resourceFieldRef is required"))
    return errors + _file_mode(item.get("mode"), _p(path, "mode"))


def _projected(source: Mapping[str, Any], path: str) -> Errors:
    errors = _file_mode(source.get("defaultMode"), _p(path, "defaultMode"))
    for index, item in enumerate(_list(source.get("sources"))):
        entry = _map(item)
        at = _p(path, "sources", index)
        kinds = [k for k in ("secret", "configMap", "downwardAPI", "serviceAccountToken",
                             "clusterTrustBundle") if entry.get(k) is not None]
        for kind in ("secret", "configMap"):
            if entry.get(kind) is not None:
                part = _map(entry[kind])
                if not _str(part.get("name")):
                    errors.append(required(_p(at, kind, "name")))
                for position, key_item in enumerate(_list(part.get("items"))):
                    errors += _key_to_path(_map(key_item), _p(at, kind, "items", position))
        for file_item in _list(_map(entry.get("downwardAPI")).get("items")):
            errors += _downward_api_file(_map(file_item), _p(at, "downwardAPI"))
        token = entry.get("serviceAccountToken")
        if token is not None:
            errors += _service_account_token(_map(token), _p(at, "serviceAccountToken"), path)
        if len(kinds) > 1:
            errors.append(forbidden(at, "may not specify more than 1 volume type per source"))
    return errors


def _service_account_token(token: Mapping[str, Any], at: str, path: str) -> Errors:
    errors = []
    seconds = token.get("expirationSeconds")
    if isinstance(seconds, int):
        if seconds < 600:
            errors.append(invalid(_p(at, "expirationSeconds"), seconds,
                                  "may not specify a duration less than 10 minutes"))
        if seconds > 1 << 32:
            errors.append(invalid(_p(at, "expirationSeconds"), seconds,
                                  "may not specify a duration larger than 2^32 seconds"))
    target = _str(token.get("path"))
    if not target:
        errors.append(required(_p(path, "path")))
    else:
        errors += _local_non_reserved_path(target, _p(path, "path"))
    return errors


def _csi_driver(driver: str, path: str) -> Errors:
    errors: Errors = []
    if not driver:
        errors.append(required(path))
    if len(driver) > 63:
        errors.append(too_long(path, 63))
    return errors + [invalid(path, driver, m)
                     for m in names.is_dns1123_subdomain(driver.lower())]


def _ephemeral(source: Mapping[str, Any], path: str, name: str, pod_name: str) -> Errors:
    if source.get("volumeClaimTemplate") is None:
        return [required(_p(path, "volumeClaimTemplate"))]
    if pod_name and name:
        claim = f"{pod_name}-{name}"
        return [invalid(_p(path, "name"), name, f"PVC name {_go_q(claim)}: {m}")
                for m in names.name_is_dns_subdomain(claim, False)]
    return []


def _nfs(source: Mapping[str, Any], path: str) -> Errors:
    errors = [] if _str(source.get("server")) else [required(_p(path, "server"))]
    target = _str(source.get("path"))
    if not target:
        errors.append(required(_p(path, "path")))
    if not target.startswith("/"):
        errors.append(invalid(_p(path, "path"), target, "must be an absolute path"))
    return errors


def _go_q(text: str) -> str:
    return go_quote(text)


# --- env -----------------------------------------------------------------------------------
def validate_env(env: Any, path: str) -> Errors:
    """``ValidateEnv``."""
    errors: Errors = []
    for index, item in enumerate(_list(env)):
        var = _map(item)
        at = _p(path, index)
        name = _str(var.get("name"))
        if not name:
            errors.append(required(_p(at, "name")))
        else:
            errors += [invalid(_p(at, "name"), name, m) for m in names.is_env_var_name(name)]
        errors += _env_value_from(var, _p(at, "valueFrom"))
    return errors


def _env_value_from(var: Mapping[str, Any], path: str) -> Errors:
    source = var.get("valueFrom")
    if source is None:
        return []
    source = _map(source)
    errors: Errors = []
    count = 0
    if source.get("fieldRef") is not None:
        count += 1
        errors += _object_field_selector(_map(source["fieldRef"]), ENV_FIELD_PATHS,
                                         _p(path, "fieldRef"))
    if source.get("resourceFieldRef") is not None:
        count += 1
        errors += _resource_field_selector(_map(source["resourceFieldRef"]),
                                           _p(path, "resourceFieldRef"), volume=False)
    for key in ("configMapKeyRef", "secretKeyRef"):
        if source.get(key) is not None:
            count += 1
            errors += _key_selector(_map(source[key]), _p(path, key))
    if count == 0:
        errors.append(invalid(path, "", "must specify one of: `fieldRef`, `resourceFieldRef`, "
                                        "`configMapKeyRef` or `secretKeyRef`"))
    elif _str(var.get("value")):
        errors.append(invalid(path, "", "may not be specified when `value` is not empty"))
    elif count > 1:
        errors.append(invalid(path, "", "may not have more than one field specified at a time"))
    return errors


def _object_field_selector(ref: Mapping[str, Any], allowed: Sequence[str], path: str) -> Errors:
    if not _str(ref.get("apiVersion")):
        return [required(_p(path, "apiVersion"))]
    field_path = _str(ref.get("fieldPath"))
    if not field_path:
        return [required(_p(path, "fieldPath"))]
    if "[" in field_path and field_path.endswith("]"):
        base, subscript = field_path[:-1].split("[", 1)
        subscript = subscript.strip("'\"")
        if base == "metadata.annotations":
            return [invalid(path, subscript.lower(), m)
                    for m in names.is_qualified_name(subscript.lower())]
        if base == "metadata.labels":
            return [invalid(path, subscript, m) for m in names.is_qualified_name(subscript)]
        return [invalid(path, base, "does not support subscript")]
    if field_path not in allowed:
        return [not_supported(_p(path, "fieldPath"), field_path, sorted(allowed))]
    return []


def _resource_field_selector(ref: Mapping[str, Any], path: str, *, volume: bool) -> Errors:
    resource = _str(ref.get("resource"))
    if volume and not _str(ref.get("containerName")):
        return [required(_p(path, "containerName"))]
    if not resource:
        return [required(_p(path, "resource"))]
    hugepages = resource.startswith(("limits.hugepages-", "requests.hugepages-"))
    if resource not in RESOURCE_FIELD_PATHS and not hugepages:
        return [not_supported(_p(path, "resource"), resource, RESOURCE_FIELD_PATHS)]
    return []


def _key_selector(ref: Mapping[str, Any], path: str) -> Errors:
    name = _str(ref.get("name"))
    errors = [invalid(_p(path, "name"), name, m) for m in names.name_is_dns_subdomain(name, False)]
    key = _str(ref.get("key"))
    if not key:
        errors.append(required(_p(path, "key")))
    else:
        errors += [invalid(_p(path, "key"), key, m) for m in names.is_config_map_key(key)]
    return errors


def validate_env_from(sources: Any, path: str) -> Errors:
    """``ValidateEnvFrom``."""
    errors: Errors = []
    for index, item in enumerate(_list(sources)):
        source = _map(item)
        at = _p(path, index)
        prefix = _str(source.get("prefix"))
        if prefix:
            errors += [invalid(_p(at, "prefix"), prefix, m) for m in names.is_env_var_name(prefix)]
        count = 0
        for key in ("configMapRef", "secretRef"):
            if source.get(key) is not None:
                count += 1
                name = _str(_map(source[key]).get("name"))
                if not name:
                    errors.append(required(_p(at, key, "name")))
                else:
                    errors += [invalid(_p(at, key, "name"), name, m)
                               for m in names.name_is_dns_subdomain(name, True)]
        if count == 0:
            errors.append(invalid(path, "", "must specify one of: `configMapRef` or `secretRef`"))
        elif count > 1:
            errors.append(invalid(path, "", "may not have more than one field specified at a "
                                            "time"))
    return errors


# --- containers ------------------------------------------------------------------------------
def _ports(ports: Any, path: str) -> Errors:
    errors: Errors = []
    seen: set[str] = set()
    for index, item in enumerate(_list(ports)):
        port = _map(item)
        at = _p(path, index)
        name = _str(port.get("name"))
        if name:
            problems = names.is_valid_port_name(name)
            if problems:
                errors += [invalid(_p(at, "name"), name, m) for m in problems]
            elif name in seen:
                errors.append(duplicate(_p(at, "name"), name))
            else:
                seen.add(name)
        number = port.get("containerPort")
        if not number:
            errors.append(required(_p(at, "containerPort")))
        elif isinstance(number, int):
            errors += [invalid(_p(at, "containerPort"), number, m)
                       for m in names.is_valid_port_num(number)]
        host = port.get("hostPort")
        if isinstance(host, int) and host:
            errors += [invalid(_p(at, "hostPort"), host, m) for m in names.is_valid_port_num(host)]
        protocol = _str(port.get("protocol"))
        if not protocol:
            errors.append(required(_p(at, "protocol")))
        elif protocol not in PROTOCOLS:
            errors.append(not_supported(_p(at, "protocol"), protocol, PROTOCOLS))
    return errors


def _volume_mounts(mounts: Any, volumes: Mapping[str, Any], container: Mapping[str, Any],
                   path: str) -> Errors:
    errors: Errors = []
    mount_points: set[str] = set()
    privileged = _map(container.get("securityContext")).get("privileged") is True
    for index, item in enumerate(_list(mounts)):
        mount = _map(item)
        at = _p(path, index)
        name, target = _str(mount.get("name")), _str(mount.get("mountPath"))
        if not name:
            errors.append(required(_p(at, "name")))
        if name not in volumes:
            errors.append(not_found(_p(at, "name"), name))
        if not target:
            errors.append(required(_p(at, "mountPath")))
        if target in mount_points:
            errors.append(invalid(_p(at, "mountPath"), target, "must be unique"))
        mount_points.add(target)
        sub_path, sub_path_expr = _str(mount.get("subPath")), _str(mount.get("subPathExpr"))
        if sub_path:
            errors += _local_descending_path(sub_path, _p(path, "subPath"))
        if sub_path_expr:
            if sub_path:
                errors.append(invalid(_p(at, "subPathExpr"), sub_path_expr,
                                      "subPathExpr and subPath are mutually exclusive"))
            errors += _local_descending_path(sub_path_expr, _p(path, "subPathExpr"))
        propagation = mount.get("mountPropagation")
        if isinstance(propagation, str):
            supported = ("Bidirectional", "HostToContainer", "None")
            if propagation not in supported:
                errors.append(not_supported(_p(path, "mountPropagation"), propagation,
                                            supported))
            if propagation == "Bidirectional" and not privileged:
                errors.append(forbidden(_p(path, "mountPropagation"), "Bidirectional mount "
                                        "propagation is available only to privileged containers"))
    return errors


def _resources(resources: Any, path: str) -> Errors:
    requirements = _map(resources)
    errors: Errors = []
    limits, requests = _map(requirements.get("limits")), _map(requirements.get("requests"))
    for kind, values in (("limits", limits), ("requests", requests)):
        for name, value in values.items():
            at = _p(path, kind, f"[{name}]")
            errors += _resource_name(name, at)
            parsed = _quantity(value)
            if parsed is None:
                continue
            if parsed.is_negative():
                errors.append(invalid(at, str(parsed), objectmeta.IS_NEGATIVE))
            if kind == "requests" and name in limits:
                limit = _quantity(limits[name])
                overcommit = _overcommit_allowed(name)
                if limit is not None and not overcommit and parsed.value != limit.value:
                    errors.append(invalid(_p(path, "requests"), str(parsed),
                                          f"must be equal to {name} limit of {limit}"))
                elif limit is not None and parsed.value > limit.value:
                    errors.append(invalid(_p(path, "requests"), str(parsed),
                                          f"must be less than or equal to {name} limit of "
                                          f"{limit}"))
            elif kind == "requests" and not _overcommit_allowed(name):
                errors.append(required(_p(path, "limits"),
                                       "Limit must be set for non overcommitable resources"))
    hugepages = any(n.startswith("hugepages-") for n in [*limits, *requests])
    if hugepages and not any(n in ("cpu", "memory") for n in [*limits, *requests]):
        errors.append(forbidden(path, "HugePages require cpu or memory"))
    return errors


def _quantity(value: Any) -> Any:
    try:
        return parse_quantity(str(value))
    except QuantityError:
        return None


def _native(name: str) -> bool:
    return "/" not in name or "kubernetes.io/" in name


def _overcommit_allowed(name: str) -> bool:
    return _native(name) and not name.startswith("hugepages-")


def _resource_name(name: str, path: str) -> Errors:
    """``validateContainerResourceName``."""
    errors = [invalid(path, name, m) for m in names.is_qualified_name(name)]
    if errors:
        return errors
    if "/" not in name:
        standard = {"cpu", "memory", "ephemeral-storage", "storage", "pods", "services",
                    "secrets", "configmaps"}
        if name not in standard and not name.startswith("hugepages-") \
                and not name.startswith(("requests.", "limits.")):
            errors.append(invalid(path, name, "must be a standard resource type or fully "
                                              "qualified"))
        if name not in STANDARD_CONTAINER_RESOURCES and not name.startswith("hugepages-"):
            errors.append(invalid(path, name, "must be a standard resource for containers"))
    elif not _native(name):
        extended = not name.startswith("requests.") and not names.is_qualified_name(
            "requests." + name)
        if not extended:
            errors.append(invalid(path, name, "doesn't follow extended resource name standard"))
    return errors


def _seccomp(profile: Any, path: str) -> Errors:
    if profile is None:
        return []
    profile = _map(profile)
    kind = _str(profile.get("type"))
    errors: Errors = []
    if not kind:
        errors.append(required(_p(path, "type"), "type is required when seccompProfile is set"))
    elif kind not in SECCOMP_TYPES:
        errors.append(not_supported(_p(path, "type"), kind, SECCOMP_TYPES))
    local = profile.get("localhostProfile")
    if kind == "Localhost":
        if local is None:
            errors.append(required(_p(path, "localhostProfile"),
                                   "must be set when seccomp type is Localhost"))
        else:
            errors += _local_descending_path(_str(local), _p(path, "localhostProfile"))
    elif local is not None:
        errors.append(invalid(_p(path, "localhostProfile"), GoSyntax(
            f"&core.SeccompProfile{{Type:{_go_q(kind)}, LocalhostProfile:(*string)"
            "(0xc000000000)}"), "can only be set when seccomp type is Localhost"))
    return errors


def _container_security_context(context: Any, path: str) -> Errors:
    """``ValidateSecurityContext``."""
    if context is None:
        return []
    sc = _map(context)
    errors: Errors = []
    for key in ("runAsUser", "runAsGroup"):
        value = sc.get(key)
        if isinstance(value, int):
            errors += [invalid(_p(path, key), value, m) for m in names.is_valid_user_id(value)]
    proc_mount = sc.get("procMount")
    if isinstance(proc_mount, str) and proc_mount not in ("Default", "Unmasked"):
        errors.append(not_supported(_p(path, "procMount"), proc_mount, ("Default", "Unmasked")))
    errors += _seccomp(sc.get("seccompProfile"), _p(path, "seccompProfile"))
    if sc.get("allowPrivilegeEscalation") is False:
        shown = GoSyntax("&core.SecurityContext{...}")
        if sc.get("privileged") is True:
            errors.append(invalid(path, shown, "cannot set `allowPrivilegeEscalation` to false "
                                               "and `privileged` to true"))
        for capability in _list(_map(sc.get("capabilities")).get("add")):
            if capability == "CAP_SYS_ADMIN":
                errors.append(invalid(path, shown, "cannot set `allowPrivilegeEscalation` to "
                                                   "false and `capabilities.Add` CAP_SYS_ADMIN"))
    return errors


def _handler(handler: Mapping[str, Any], path: str, grace: Any) -> Errors:
    errors: Errors = []
    count = 0
    for key in ("exec", "httpGet", "tcpSocket", "grpc", "sleep"):
        if handler.get(key) is None:
            continue
        if count:
            errors.append(forbidden(_p(path, key), "may not specify more than 1 handler type"))
            continue
        count += 1
        action = _map(handler[key])
        at = _p(path, key)
        if key == "exec" and not _list(action.get("command")):
            errors.append(required(_p(at, "command")))
        elif key == "httpGet":
            if not _str(action.get("path")):
                errors.append(required(_p(at, "path")))
            errors += _port_num_or_name(action.get("port"), _p(at, "port"))
            scheme = _str(action.get("scheme"))
            if scheme not in ("HTTP", "HTTPS"):
                errors.append(not_supported(_p(at, "scheme"), scheme, ("HTTP", "HTTPS")))
            for header in _list(action.get("httpHeaders")):
                name = _str(_map(header).get("name"))
                errors += [invalid(_p(at, "httpHeaders"), name, m)
                           for m in names.is_http_header_name(name)]
        elif key in ("tcpSocket", "grpc"):
            errors += _port_num_or_name(action.get("port"), _p(at, "port"))
        elif key == "sleep":
            seconds = action.get("seconds")
            if isinstance(grace, int) and isinstance(seconds, int) \
                    and (seconds <= 0 or seconds > grace):
                errors.append(invalid(at, seconds, "must be greater than 0 and less than "
                                      f"terminationGracePeriodSeconds ({grace}). Enable "
                                      "AllowPodLifecycleSleepActionZeroValue feature gate for "
                                      "zero sleep."))
    if not count:
        errors.append(required(path, "must specify a handler type"))
    return errors


def _port_num_or_name(port: Any, path: str) -> Errors:
    if isinstance(port, int) and not isinstance(port, bool):
        return [invalid(path, port, m) for m in names.is_valid_port_num(port)]
    if isinstance(port, str):
        return [invalid(path, port, m) for m in names.is_valid_port_name(port)]
    return []


def _probe(probe: Any, path: str, grace: Any, kind: str) -> Errors:
    if probe is None:
        return []
    values = _map(probe)
    handler = {k: values.get(k) for k in ("exec", "httpGet", "tcpSocket", "grpc")}
    errors = _handler(handler, path, grace)
    for key in ("initialDelaySeconds", "timeoutSeconds", "periodSeconds", "successThreshold",
                "failureThreshold"):
        value = values.get(key)
        if isinstance(value, int) and value < 0:
            errors.append(invalid(_p(path, key), value, objectmeta.IS_NEGATIVE))
    grace_override = values.get("terminationGracePeriodSeconds")
    if isinstance(grace_override, int) and grace_override <= 0:
        errors.append(invalid(_p(path, "terminationGracePeriodSeconds"), grace_override,
                              "must be greater than 0"))
    if kind in ("livenessProbe", "startupProbe") and values.get("successThreshold") != 1:
        errors.append(invalid(_p(path, "successThreshold"), values.get("successThreshold"),
                              "must be 1"))
    if kind == "readinessProbe" and grace_override is not None:
        errors.append(invalid(_p(path, "terminationGracePeriodSeconds"), grace_override,
                              "must not be set for readinessProbes"))
    return errors


def _container_common(container: Mapping[str, Any], volumes: Mapping[str, Any],
                      path: str) -> Errors:
    """``validateContainerCommon``."""
    errors: Errors = []
    name = _str(container.get("name"))
    if not name:
        errors.append(required(_p(path, "name")))
    else:
        errors += [invalid(_p(path, "name"), name, m) for m in names.is_dns1123_label(name)]
    if not _str(container.get("image")):
        errors.append(required(_p(path, "image")))
    policy = _str(container.get("terminationMessagePolicy"))
    if not policy:
        errors.append(required(_p(path, "terminationMessagePolicy")))
    elif policy not in TERMINATION_MESSAGE_POLICIES:
        errors.append(not_supported(_p(path, "terminationMessagePolicy"), policy,
                                    TERMINATION_MESSAGE_POLICIES))
    errors += _ports(container.get("ports"), _p(path, "ports"))
    errors += validate_env(container.get("env"), _p(path, "env"))
    errors += validate_env_from(container.get("envFrom"), _p(path, "envFrom"))
    errors += _volume_mounts(container.get("volumeMounts"), volumes, container,
                             _p(path, "volumeMounts"))
    for index, device in enumerate(_list(container.get("volumeDevices"))):
        device_name = _str(_map(device).get("name"))
        if device_name not in volumes:
            errors.append(not_found(_p(path, "volumeDevices", index, "name"), device_name))
    pull = _str(container.get("imagePullPolicy"))
    if not pull:
        errors.append(required(_p(path, "imagePullPolicy")))
    elif pull not in PULL_POLICIES:
        errors.append(not_supported(_p(path, "imagePullPolicy"), pull, PULL_POLICIES))
    errors += _resources(container.get("resources"), _p(path, "resources"))
    errors += _container_security_context(container.get("securityContext"),
                                          _p(path, "securityContext"))
    return errors


def _lifecycle_and_probes(container: Mapping[str, Any], path: str, grace: Any) -> Errors:
    errors: Errors = []
    lifecycle = _map(container.get("lifecycle"))
    for hook in ("postStart", "preStop"):
        if lifecycle.get(hook) is not None:
            errors += _handler(_map(lifecycle[hook]), _p(path, "lifecycle", hook), grace)
    for kind in ("livenessProbe", "readinessProbe", "startupProbe"):
        errors += _probe(container.get(kind), _p(path, kind), grace, kind)
    return errors


def validate_containers(containers: Any, volumes: Mapping[str, Any], path: str,
                        grace: Any) -> Errors:
    """``validateContainers``: at least one, names unique, probes and hooks valid."""
    items = _list(containers)
    if not items:
        return [required(path)]
    errors: Errors = []
    seen: set[str] = set()
    for index, item in enumerate(items):
        container = _map(item)
        at = _p(path, index)
        errors += _container_common(container, volumes, at)
        name = _str(container.get("name"))
        if name in seen:
            errors.append(duplicate(_p(at, "name"), name))
        seen.add(name)
        errors += _lifecycle_and_probes(container, at, grace)
        if container.get("restartPolicy") is not None:
            errors.append(forbidden(_p(at, "restartPolicy"),
                                    "may not be set for non-init containers"))
    return errors


def validate_init_containers(init: Any, containers: Any, volumes: Mapping[str, Any],
                             path: str, grace: Any) -> Errors:
    """``validateInitContainers``."""
    errors: Errors = []
    seen = {_str(_map(c).get("name")) for c in _list(containers)}
    for index, item in enumerate(_list(init)):
        container = _map(item)
        at = _p(path, index)
        errors += _container_common(container, volumes, at)
        policy = container.get("restartPolicy")
        if isinstance(policy, str) and policy != "Always":
            errors.append(not_supported(_p(at, "restartPolicy"), policy, ("Always",)))
        name = _str(container.get("name"))
        if name in seen:
            errors.append(duplicate(_p(at, "name"), name))
        elif name:
            seen.add(name)
        if policy == "Always":
            errors += _lifecycle_and_probes(container, at, grace)
        else:
            for key in ("lifecycle", "livenessProbe", "readinessProbe", "startupProbe"):
                if container.get(key) is not None:
                    errors.append(forbidden(_p(at, key), "may not be set for init containers "
                                                         "without restartPolicy=Always"))
    return errors


# --- pod spec ----------------------------------------------------------------------------------
def validate_tolerations(tolerations: Any, path: str) -> Errors:
    """``ValidateTolerations``."""
    errors: Errors = []
    for index, item in enumerate(_list(tolerations)):
        toleration = _map(item)
        at = _p(path, index)
        key, operator = _str(toleration.get("key")), _str(toleration.get("operator"))
        value, effect = _str(toleration.get("value")), _str(toleration.get("effect"))
        if key:
            errors += objectmeta.validate_label_name(key, _p(at, "key"))
        if not key and operator != "Exists":
            errors.append(invalid(_p(at, "operator"), operator, "operator must be Exists when "
                                  '`key` is empty, which means "match all values and all keys"'))
        if toleration.get("tolerationSeconds") is not None and effect != "NoExecute":
            errors.append(invalid(_p(at, "effect"), effect,
                                  "effect must be 'NoExecute' when `tolerationSeconds` is set"))
        if operator in ("Equal", ""):
            problems = names.is_valid_label_value(value)
            if problems:
                errors.append(invalid(_p(at, "operator"), value, ";".join(problems)))
        elif operator == "Exists":
            if value:
                errors.append(invalid(_p(at, "operator"), value,
                                      "value must be empty when `operator` is 'Exists'"))
        else:
            errors.append(not_supported(_p(at, "operator"), operator, ("Equal", "Exists")))
        if effect and effect not in TAINT_EFFECTS:
            errors.append(not_supported(_p(at, "effect"), effect, TAINT_EFFECTS))
    return errors


def _pod_security_context(context: Any, path: str) -> Errors:
    if context is None:
        return []
    sc = _map(context)
    errors: Errors = []
    for key in ("fsGroup", "runAsUser", "runAsGroup"):
        value = sc.get(key)
        if isinstance(value, int):
            errors += [invalid(_p(path, key), value, m) for m in names.is_valid_user_id(value)]
    for index, gid in enumerate(_list(sc.get("supplementalGroups"))):
        if isinstance(gid, int):
            errors += [invalid(_p(path, "supplementalGroups", index), gid, m)
                       for m in names.is_valid_user_id(gid)]
    seen: set[str] = set()
    for index, item in enumerate(_list(sc.get("sysctls"))):
        name = _str(_map(item).get("name"))
        at = _p(path, "sysctls", index, "name")
        if not name:
            errors.append(required(at))
        elif name in seen:
            errors.append(duplicate(at, name))
        seen.add(name)
    policy = sc.get("fsGroupChangePolicy")
    if isinstance(policy, str) and policy not in ("OnRootMismatch", "Always"):
        errors.append(not_supported(_p(path, "fsGroupChangePolicy"), policy,
                                    ("Always", "OnRootMismatch")))
    return errors + _seccomp(sc.get("seccompProfile"), _p(path, "seccompProfile"))


def validate_pod_spec(spec: Mapping[str, Any], pod_name: str, path: str = "spec") -> Errors:
    """``ValidatePodSpec`` (after defaulting)."""
    errors: Errors = []
    grace = spec.get("terminationGracePeriodSeconds")
    if grace is None:
        errors.append(required(_p(path, "terminationGracePeriodSeconds")))
    volumes, volume_errors = validate_volumes(spec.get("volumes"), _p(path, "volumes"), pod_name)
    errors += volume_errors
    errors += validate_containers(spec.get("containers"), volumes, _p(path, "containers"), grace)
    errors += validate_init_containers(spec.get("initContainers"), spec.get("containers"),
                                       volumes, _p(path, "initContainers"), grace)
    if spec.get("hostNetwork") is True:
        for index, item in enumerate(_list(spec.get("containers"))):
            for position, port in enumerate(_list(_map(item).get("ports"))):
                host, number = _map(port).get("hostPort"), _map(port).get("containerPort")
                if host != number:
                    errors.append(invalid(_p(path, "containers", index, "ports", position,
                                             "hostPort"), host or 0,
                                          "must match `containerPort` when `hostNetwork` is true"))
    errors += _enum(spec.get("restartPolicy"), _p(path, "restartPolicy"), RESTART_POLICIES)
    errors += _enum(spec.get("dnsPolicy"), _p(path, "dnsPolicy"), DNS_POLICIES)
    errors += objectmeta.validate_labels(spec.get("nodeSelector"), _p(path, "nodeSelector"))
    errors += _pod_security_context(spec.get("securityContext"), _p(path, "securityContext"))
    for index, secret in enumerate(_list(spec.get("imagePullSecrets"))):
        if set(_map(secret)) - {"name"}:
                errors.append(invalid(_p(path, "imagePullSecrets", index), GoSyntax(
                f"core.LocalObjectReference{{Name:{_go_q(_str(_map(secret).get('name')))}}}"),
                "only name may be set"))
    for index, gate in enumerate(_list(spec.get("readinessGates"))):
        kind = _str(_map(gate).get("conditionType"))
        errors += [invalid(_p(path, "readinessGates", index, "conditionType"), kind, m)
                   for m in names.is_qualified_name(kind)]
    gates: set[str] = set()
    for index, gate in enumerate(_list(spec.get("schedulingGates"))):
        name = _str(_map(gate).get("name"))
        errors += [invalid(_p(path, "schedulingGates", index), name, m)
                   for m in names.is_qualified_name(name)]
        if name in gates:
            errors.append(duplicate(_p(path, "schedulingGates", index), name))
        gates.add(name)
    errors += _names(spec, path)
    deadline = spec.get("activeDeadlineSeconds")
    if isinstance(deadline, int) and not 1 <= deadline <= MAX_INT32:
        errors.append(invalid(_p(path, "activeDeadlineSeconds"), deadline,
                              names.inclusive_range_error(1, MAX_INT32)))
    if _list(spec.get("tolerations")):
        errors += validate_tolerations(spec.get("tolerations"), _p(path, "tolerations"))
    preemption = spec.get("preemptionPolicy")
    if isinstance(preemption, str):
        errors += _enum(preemption, _p(path, "preemptionPolicy"),
                        ("PreemptLowerPriority", "Never"))
    return errors


def _names(spec: Mapping[str, Any], path: str) -> Errors:
    errors: Errors = []
    rules: tuple[tuple[str, Callable[[str], list[str]]], ...] = (
        ("serviceAccountName", lambda v: names.name_is_dns_subdomain(v, False)),
        ("nodeName", lambda v: names.name_is_dns_subdomain(v, False)),
        ("hostname", names.is_dns1123_label),
        ("subdomain", names.is_dns1123_label),
        ("priorityClassName", lambda v: names.name_is_dns_subdomain(v, False)),
    )
    for key, rule in rules:
        value = _str(spec.get(key))
        if value:
            errors += [invalid(_p(path, key), value, m) for m in rule(value)]
    runtime_class = spec.get("runtimeClassName")
    if isinstance(runtime_class, str):
        errors += [invalid(_p(path, "runtimeClassName"), runtime_class, m)
                   for m in names.name_is_dns_subdomain(runtime_class, False)]
    return errors


def _enum(value: Any, path: str, allowed: Sequence[str]) -> Errors:
    text = _str(value)
    if not text:
        return [required(path)]
    if text not in allowed:
        return [not_supported(path, text, allowed)]
    return []


# --- the pod -----------------------------------------------------------------------------
def _metadata_and_spec(pod: Mapping[str, Any]) -> Errors:
    """``validatePodMetadataAndSpec``."""
    meta = _map(pod.get("metadata"))
    spec = _map(pod.get("spec"))
    errors = objectmeta.validate_object_meta(meta, namespaced=True,
                                             name_rule=names.name_is_dns_subdomain, core=True)
    errors += validate_pod_spec(spec, _str(meta.get("name")))
    if not _str(spec.get("serviceAccountName")):
        for index, volume in enumerate(_list(spec.get("volumes"))):
            sources = _list(_map(_map(volume).get("projected")).get("sources"))
            for position, source in enumerate(sources):
                if _map(source).get("serviceAccountToken") is not None:
                    errors.append(forbidden(
                        _p("spec", "volumes", index, "projected", "sources", position,
                           "serviceAccountToken"),
                        "must not be specified when serviceAccountName is not set"))
    for key in ("containers", "initContainers"):
        for index, item in enumerate(_list(spec.get(key))):
            image = _str(_map(item).get("image"))
            if image != image.strip():
                errors.append(invalid(_p("spec", key, index, "image"), image,
                                      "must not have leading or trailing whitespace"))
    return errors


def validate_pod_create(pod: Mapping[str, Any]) -> Errors:
    """``ValidatePodCreate`` of the defaulted ``pod``."""
    defaulted = default_pod(pod)
    spec = _map(defaulted.get("spec"))
    errors = _metadata_and_spec(defaulted)
    if _list(spec.get("ephemeralContainers")):
        errors.append(forbidden("spec.ephemeralContainers", "cannot be set on create"))
    if _str(spec.get("nodeName")) and _list(spec.get("schedulingGates")):
        errors.append(forbidden("spec.nodeName",
                                "cannot be set until all schedulingGates have been cleared"))
    return errors


def validate_pod_update(new: Mapping[str, Any], old: Mapping[str, Any]) -> Errors:
    """``ValidatePodUpdate``: the pod is valid, and only the mutable spec fields changed."""
    new_pod, old_pod = default_pod(new), default_pod(old)
    errors = objectmeta.validate_object_meta_update(_map(new_pod.get("metadata")),
                                                    _map(old_pod.get("metadata")), core=True)
    errors += _metadata_and_spec(new_pod)
    new_spec, old_spec = _map(new_pod.get("spec")), _map(old_pod.get("spec"))
    for key in ("containers", "initContainers"):
        new_list, old_list = _list(new_spec.get(key)), _list(old_spec.get(key))
        if len(new_list) != len(old_list):
            errors.append(forbidden(_p("spec", key),
                                    "pod updates may not add or remove containers"))
            return errors
        for index, item in enumerate(new_list):
            image = _str(_map(item).get("image"))
            if not image:
                errors.append(required(_p("spec", key, index, "image")))
            if image != image.strip():
                errors.append(invalid(_p("spec", key, index, "image"), image,
                                      "must not have leading or trailing whitespace"))
    deadline_errors, stop = _deadline_update(new_spec.get("activeDeadlineSeconds"),
                                             old_spec.get("activeDeadlineSeconds"))
    errors += deadline_errors
    if stop:
        return errors
    errors += _tolerations_update(new_spec.get("tolerations"), old_spec.get("tolerations"))
    errors += _gates_update(new_spec.get("schedulingGates"), old_spec.get("schedulingGates"))
    if _munged(new_spec, old_spec) != dict(old_spec):
        errors.append(forbidden("spec", "pod updates may not change fields other than "
                                f"{UPDATABLE_POD_SPEC_FIELDS}\n"))
    return errors


def _deadline_update(new: Any, old: Any) -> tuple[Errors, bool]:
    """The activeDeadlineSeconds rules: only set, or lowered; ``True`` when Go stops there."""
    path = "spec.activeDeadlineSeconds"
    if isinstance(new, int):
        if not 0 <= new <= MAX_INT32:
            return [invalid(path, new, names.inclusive_range_error(0, MAX_INT32))], True
        if isinstance(old, int) and old < new:
            return [invalid(path, new, "must be less than or equal to previous value")], True
    elif old is not None:
        return [invalid(path, None, "must not update from a positive integer to nil value")], \
            False
    return [], False


def _tolerations_update(new: Any, old: Any) -> Errors:
    new_items = [dict(_map(t)) for t in _list(new)]
    for old_item in _list(old):
        expected = dict(_map(old_item))
        if not any({**expected, "tolerationSeconds": n.get("tolerationSeconds")}
                   == {**n, "tolerationSeconds": n.get("tolerationSeconds")}
                   for n in new_items):
            return [forbidden("spec.tolerations",
                              "existing toleration can not be modified except its "
                              "tolerationSeconds")]
    return validate_tolerations(new, "spec.tolerations")


def _gates_update(new: Any, old: Any) -> Errors:
    old_names = {_str(_map(g).get("name")) for g in _list(old)}
    return [forbidden(_p("spec", "schedulingGates", index, "name"),
                      f"only deletion is allowed, but found new scheduling gate '{name}'")
            for index, gate in enumerate(_list(new))
            if (name := _str(_map(gate).get("name"))) not in old_names]


def _munged(new_spec: Mapping[str, Any], old_spec: Mapping[str, Any]) -> dict[str, Any]:
    """The new spec with the fields an update may change set back to their old values."""
    munged = copy.deepcopy(dict(new_spec))
    for key in ("containers", "initContainers"):
        for item, old_item in zip(_list(munged.get(key)), _list(old_spec.get(key)),
                                  strict=False):
            if isinstance(item, dict):
                item["image"] = _map(old_item).get("image")
                if "image" not in _map(old_item):
                    del item["image"]
    for key in ("activeDeadlineSeconds", "schedulingGates", "tolerations"):
        if key in old_spec:
            munged[key] = copy.deepcopy(old_spec[key])
        else:
            munged.pop(key, None)
    old_grace = old_spec.get("terminationGracePeriodSeconds")
    if isinstance(old_grace, int) and old_grace < 0 \
            and munged.get("terminationGracePeriodSeconds") == 1:
        munged["terminationGracePeriodSeconds"] = old_grace
    return munged


def validate_pod_status_update(new: Mapping[str, Any], old: Mapping[str, Any]) -> Errors:
    """``ValidatePodStatusUpdate``."""
    new_meta, old_meta = _map(new.get("metadata")), _map(old.get("metadata"))
    errors = objectmeta.validate_object_meta_update(new_meta, old_meta, core=True)
    status = _map(new.get("status"))
    system = {"PodScheduled", "Ready", "Initialized"}
    for index, condition in enumerate(_list(status.get("conditions"))):
        kind = _str(_map(condition).get("type"))
        if kind not in system:
            errors += [invalid(_p("metadata", "conditions", index, "Type"), kind, m)
                       for m in names.is_qualified_name(kind)]
    if _str(_map(new.get("spec")).get("nodeName")) != _str(_map(old.get("spec")).get("nodeName")):
        errors.append(forbidden("status.nodeName", "may not be changed directly"))
    old_qos = _str(_map(old.get("status")).get("qosClass"))
    if _str(status.get("qosClass")) != old_qos:
        errors.append(invalid("status.qosClass", _str(status.get("qosClass")),
                              objectmeta.FIELD_IMMUTABLE))
    return errors


__all__ = [
    "default_pod",
    "validate_containers",
    "validate_env",
    "validate_env_from",
    "validate_init_containers",
    "validate_pod_create",
    "validate_pod_spec",
    "validate_pod_status_update",
    "validate_pod_update",
    "validate_tolerations",
    "validate_volumes",
]
