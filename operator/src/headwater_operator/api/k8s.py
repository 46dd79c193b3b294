"""Core Kubernetes shapes used in Flow and Deployment specs (pod-level settings).

Small, frequently written types (resources, env, tolerations, pull secrets) are modelled
field by field so typos are caught. Large core types (affinity, security contexts,
volumes) are kept as free-form objects: their full schemas are thousands of lines, the
API server validates them when the operator creates the pod, and a wrong field there
surfaces as a pod-creation error on the FlowRun.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, StrictBool, StrictInt

from headwater_operator.api.common import (
    FreeForm,
    LocalObjectReference,
    OpenModel,
    Quantity,
    SpecModel,
)


class ResourceRequirements(SpecModel):
    """CPU/memory requests and limits of the flow-run container (core/v1 ResourceRequirements)."""

    limits: dict[str, Quantity] | None = Field(
        default=None,
        description="Maximum resources the container may use, e.g. `{cpu: '2', memory: 4Gi}`.",
    )
    requests: dict[str, Quantity] | None = Field(
        default=None,
        description="Resources the scheduler reserves for the container, e.g. "
        "`{cpu: 500m, memory: 1Gi}`.",
    )


class ConfigMapKeySelector(SpecModel):
    """Selects a key of a ConfigMap or Secret in the same namespace."""

    name: str = Field(min_length=1, description="Name of the ConfigMap or Secret.")
    key: str = Field(min_length=1, description="Key to read.")
    optional: StrictBool | None = Field(
        default=None, description="When true, a missing object or key is not an error."
    )


class EnvVarSource(SpecModel):
    """Where an environment variable's value comes from (core/v1 EnvVarSource)."""

    config_map_key_ref: ConfigMapKeySelector | None = Field(
        default=None, description="Read the value from a ConfigMap key."
    )
    secret_key_ref: ConfigMapKeySelector | None = Field(
        default=None, description="Read the value from a Secret key."
    )
    field_ref: FreeForm | None = Field(
        default=None,
        description="Read the value from a pod field, e.g. `{fieldPath: metadata.name}`.",
    )
    resource_field_ref: FreeForm | None = Field(
        default=None,
        description="Read the value from a container resource, e.g. `{resource: limits.cpu}`.",
    )


class EnvVar(SpecModel):
    """An environment variable of the flow-run container (core/v1 EnvVar)."""

    name: str = Field(min_length=1, description="Variable name, e.g. `DATABASE_URL`.")
    value: str | None = Field(default=None, description="Literal value. Mutually exclusive "
                              "with `valueFrom`.")
    value_from: EnvVarSource | None = Field(
        default=None, description="Take the value from a ConfigMap, Secret or pod field."
    )


class SourceReference(SpecModel):
    """A ConfigMap or Secret whose keys all become environment variables."""

    name: str = Field(min_length=1, description="Name of the ConfigMap or Secret.")
    optional: StrictBool | None = Field(
        default=None, description="When true, a missing object is not an error."
    )


class EnvFromSource(SpecModel):
    """Import every key of a ConfigMap or Secret as environment variables."""

    prefix: str | None = Field(
        default=None, description="Prefix added to every imported variable name."
    )
    config_map_ref: SourceReference | None = Field(
        default=None, description="ConfigMap to import."
    )
    secret_ref: SourceReference | None = Field(default=None, description="Secret to import.")


class Toleration(SpecModel):
    """Lets flow-run pods schedule onto nodes with matching taints (core/v1 Toleration)."""

    key: str | None = Field(default=None, description="Taint key; empty matches all keys.")
    operator: Literal["Exists", "Equal"] | None = Field(
        default=None, description="`Equal` (default) or `Exists`."
    )
    value: str | None = Field(default=None, description="Taint value for `Equal`.")
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = Field(
        default=None, description="Taint effect to match; empty matches all effects."
    )
    toleration_seconds: StrictInt | None = Field(
        default=None,
        description="For `NoExecute`: how long the pod stays bound after the taint appears.",
    )


class Volume(OpenModel):
    """A pod volume (core/v1 Volume); only `name` is checked here, the rest is kept as-is."""

    name: str = Field(min_length=1, description="Volume name, referenced by `volumeMounts`.")


class VolumeMount(OpenModel):
    """A volume mounted into the flow-run container (core/v1 VolumeMount)."""

    name: str = Field(min_length=1, description="Name of a volume in `volumes`.")
    mount_path: str = Field(min_length=1, description="Path inside the container, e.g. `/data`.")


__all__ = [
    "ConfigMapKeySelector",
    "EnvFromSource",
    "EnvVar",
    "EnvVarSource",
    "LocalObjectReference",
    "ResourceRequirements",
    "SourceReference",
    "Toleration",
    "Volume",
    "VolumeMount",
]
