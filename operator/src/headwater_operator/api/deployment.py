"""``Deployment``: a runnable configuration of a Flow (parameters, pod template, limits)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, ClassVar, Literal

from pydantic import (
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StringConstraints,
    field_validator,
    model_validator,
)

from headwater_operator.api.block import BLOCK_NAME_MAX_LENGTH
from headwater_operator.api.common import (
    DNS_LABEL_PATTERN,
    DNS_SUBDOMAIN_PATTERN,
    Condition,
    FreeForm,
    LocalObjectReference,
    ObjectMeta,
    SpecModel,
    StatusModel,
)
from headwater_operator.api.enums import (
    CollisionStrategy,
    FinalPhase,
    FlowRunPhase,
    RetryCause,
)
from headwater_operator.api.errors import FieldValueError
from headwater_operator.api.k8s import (
    EnvFromSource,
    EnvVar,
    ResourceRequirements,
    Toleration,
    Volume,
    VolumeMount,
)
from headwater_operator.api.resource import AGE_COLUMN, PrinterColumn, Resource
from headwater_operator.api.variable import VARIABLE_NAME_MAX_LENGTH, VARIABLE_NAME_PATTERN
from headwater_operator.templating import TemplateError, check

BlockName = Annotated[str, StringConstraints(
    min_length=1, max_length=BLOCK_NAME_MAX_LENGTH, pattern=DNS_LABEL_PATTERN)]
VariableName = Annotated[str, StringConstraints(
    min_length=1, max_length=VARIABLE_NAME_MAX_LENGTH, pattern=VARIABLE_NAME_PATTERN)]


class ConcurrencySpec(SpecModel):
    """How many runs of a Deployment may be active at once, and what happens to extras."""

    limit: StrictInt = Field(
        ge=1,
        description="Maximum number of runs in Pending, Running or Retrying at once, e.g. 1.",
    )
    collision_strategy: CollisionStrategy = Field(
        default=CollisionStrategy.ENQUEUE,
        description="What happens to a run that finds the limit reached: `Enqueue` waits in "
        "`AwaitingConcurrencySlot` until a slot frees up; `CancelNew` cancels it. "
        "Default `Enqueue`.",
    )


class RunTemplate(SpecModel):
    """Pod-level settings of every flow-run pod this Deployment creates."""

    service_account_name: str | None = Field(
        default=None,
        description="ServiceAccount the flow-run pod runs as. Unset uses the namespace's "
        "`default` ServiceAccount.",
    )
    resources: ResourceRequirements | None = Field(
        default=None,
        description="CPU/memory requests and limits; replaces the Flow's `resources`.",
    )
    env: list[EnvVar] = Field(
        default_factory=list,
        description="Extra environment variables; same-named entries override the Flow's.",
    )
    env_from: list[EnvFromSource] = Field(
        default_factory=list,
        description="ConfigMaps and Secrets whose keys all become environment variables.",
    )
    node_selector: dict[str, str] = Field(
        default_factory=dict,
        description="Node labels the pod must match, e.g. `{workload: batch}`.",
    )
    tolerations: list[Toleration] = Field(
        default_factory=list, description="Taints the pod tolerates."
    )
    affinity: FreeForm | None = Field(
        default=None,
        description="Pod affinity/anti-affinity (core/v1 Affinity), passed through to the pod.",
    )
    labels: dict[str, str] = Field(
        default_factory=dict,
        description="Extra labels on flow-run pods; Headwater's own labels always win.",
    )
    annotations: dict[str, str] = Field(
        default_factory=dict, description="Extra annotations on flow-run pods."
    )
    image_pull_secrets: list[LocalObjectReference] = Field(
        default_factory=list,
        description="Secrets with registry credentials for pulling the Flow's image.",
    )
    priority_class_name: str | None = Field(
        default=None, description="PriorityClass of flow-run pods."
    )
    security_context: FreeForm | None = Field(
        default=None,
        description="Container security context (core/v1 SecurityContext), passed through.",
    )
    pod_security_context: FreeForm | None = Field(
        default=None,
        description="Pod security context (core/v1 PodSecurityContext), passed through.",
    )
    volumes: list[Volume] = Field(
        default_factory=list,
        description="Pod volumes (core/v1 Volume); each needs a `name`.",
    )
    volume_mounts: list[VolumeMount] = Field(
        default_factory=list,
        description="Mounts of `volumes` into the flow-run container; each needs `name` and "
        "`mountPath`.",
    )
    pod_overrides: FreeForm | None = Field(
        default=None,
        description="Strategic merge patch applied last to the rendered pod, as "
        "`kubectl patch --type strategic` applies one: lists merge by their Kubernetes "
        "merge key (containers and env by `name`, volumeMounts by `mountPath`, ports by "
        "`containerPort`), other lists such as tolerations and command are replaced, and "
        "`$patch: delete|replace` work; the flow container is named `flow`, e.g. "
        "`{spec: {hostNetwork: true}}`.",
    )


class ResultStorage(SpecModel):
    """Where runs persist results, caches, artifacts and asset records."""

    url: str = Field(
        min_length=1,
        description="A path or fsspec URL, e.g. `s3://acme-results/headwater` or "
        "`/mnt/results`. Credentials come from the pod's environment.",
    )


class RunStore(SpecModel):
    """Where flow-run pods keep their run records (docs/run-store.md)."""

    url: str = Field(
        min_length=1,
        description="A path or fsspec URL, e.g. `s3://acme-runs/headwater` or `/mnt/runs`. "
        "Credentials come from the pod's environment (never put them in the URL); the "
        "operator needs read and delete access too, to prune records.",
    )


class HistorySpec(SpecModel):
    """How many finished runs are kept, so etcd stays small."""

    successful_runs_limit: StrictInt = Field(
        default=10,
        ge=0,
        description="Completed runs to keep; older ones are deleted. Default 10.",
    )
    failed_runs_limit: StrictInt = Field(
        default=10,
        ge=0,
        description="Failed, Crashed or Cancelled runs to keep; older ones are deleted. "
        "Default 10.",
    )
    ttl_seconds_after_finished: StrictInt | None = Field(
        default=None,
        ge=0,
        description="Delete a finished run this many seconds after it ended, whatever the "
        "limits say. Unset keeps runs until the limits remove them.",
    )


MAX_TRIGGERS = 16
"""Triggers per Deployment (each one is evaluated at every end of an upstream run)."""
ParameterTemplates = Annotated[dict[str, str], Field(
    default_factory=dict, max_length=256,
    description="Parameters of the triggered run, each a template over the triggering "
    "run (docs/triggers.md lists its fields), e.g. "
    "`{start_date: \"{{ run.parameters.start_date }}\"}`. A template that is one "
    "expression keeps the value's type. Merged over the Deployment's `parameters`.",
)]


def _check_templates(templates: dict[str, str]) -> dict[str, str]:
    for name, template in templates.items():
        try:
            check(template, field=f"parameters.{name}")
        except TemplateError as error:
            raise FieldValueError(name, str(error).split(": ", 1)[1]) from None
    return templates


class AfterDeploymentTrigger(SpecModel):
    """Run when a run of another Deployment ends in one of ``phases``."""

    name: str = Field(
        min_length=1, max_length=253, pattern=DNS_SUBDOMAIN_PATTERN,
        description="The upstream Deployment, in the same namespace, e.g. `ingest`.",
    )
    phases: list[FinalPhase] = Field(
        default_factory=lambda: [FinalPhase.COMPLETED], min_length=1, max_length=4,
        json_schema_extra={"x-kubernetes-list-type": "set"},
        description="The upstream run's final phases that trigger a run. Default "
        "`[Completed]`: a failed upstream run stops the chain.",
    )
    parameters: ParameterTemplates

    _templates = field_validator("parameters")(_check_templates)


class AssetsTrigger(SpecModel):
    """Run when every upstream asset has a new materialization since this Deployment's
    own last run (the "dashboard only after all upstream succeeded" rule)."""

    upstream: list[Annotated[str, StringConstraints(min_length=1, max_length=1024)]] | None = \
        Field(
            default=None, max_length=256,
            json_schema_extra={"x-kubernetes-list-type": "set"},
            description="The asset keys to wait for, e.g. `[warehouse://orders]`. Unset: "
            "the upstream keys of the assets this Deployment's latest run materialized "
            "(its `status.assets[].upstream`).",
        )
    parameters: ParameterTemplates

    _templates = field_validator("parameters")(_check_templates)


class DeploymentTrigger(SpecModel):
    """One reason to run this Deployment: set exactly one of its fields."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [{
        "rule": "[has(self.afterDeployment), has(self.assets)].filter(x, x).size() == 1",
        "message": "set exactly one of afterDeployment or assets in each trigger",
    }]})

    after_deployment: AfterDeploymentTrigger | None = Field(
        default=None,
        description="Run after each run of another Deployment ends, e.g. "
        "`{name: ingest, parameters: {start_date: \"{{ run.parameters.start_date }}\"}}`.",
    )
    assets: AssetsTrigger | None = Field(
        default=None,
        description="Run once every upstream asset has been materialized again since this "
        "Deployment's last run, e.g. `{}` (upstream keys from the flow's lineage).",
    )

    @model_validator(mode="after")
    def _one_kind(self) -> DeploymentTrigger:
        if (self.after_deployment is None) == (self.assets is None):
            found = "both" if self.assets is not None else "neither"
            raise ValueError(f"set exactly one of afterDeployment or assets in each "
                             f"trigger (found {found})")
        return self


class DeploymentSpec(SpecModel):
    """Desired state of a Deployment: which Flow, with what parameters, on what pods."""

    flow_ref: LocalObjectReference = Field(
        description="The Flow to run, in the same namespace, e.g. `{name: hello}`."
    )
    description: str | None = Field(default=None, description="What this Deployment is for.")
    tags: list[str] = Field(default_factory=list, description="Free-form labels for search.")
    parameters: FreeForm = Field(
        default_factory=dict,
        description="Parameter values merged over the Flow's defaults; Schedules and FlowRuns "
        "override them, e.g. `{source: s3://raw/events}`.",
    )
    paused: StrictBool = Field(
        default=False,
        description="When true, Schedules create no new runs and new FlowRuns wait; running "
        "runs continue. Default false.",
    )
    concurrency: ConcurrencySpec | None = Field(
        default=None,
        description="Limit on simultaneously active runs. Unset means unlimited.",
    )
    blocks: list[BlockName] = Field(
        default_factory=list,
        max_length=256,
        json_schema_extra={"x-kubernetes-list-type": "set"},
        description="Blocks the flow loads (`Block.load(name)`), by name, in the same "
        "namespace, e.g. `[warehouse]`. The blocks they nest come along. Each run's pod "
        "gets their documents in `HEADWATER_BLOCKS` and their secret fields as files "
        "under `HEADWATER_BLOCKS_DIR`; a run waits (reason `BlockNotFound` or "
        "`BlockSecretNotFound`) until every one exists. See docs/blocks-kubernetes.md.",
    )
    variables: list[VariableName] = Field(
        default_factory=list,
        max_length=256,
        json_schema_extra={"x-kubernetes-list-type": "set"},
        description="Variables the flow reads (`Variable.get(name)`), e.g. `[last_sync]`. "
        "Each run's pod gets their values in `HEADWATER_VARIABLES`, as they were when "
        "the pod was created; one that does not exist is left out (`Variable.get` "
        "returns its default).",
    )
    run_template: RunTemplate = Field(
        default_factory=RunTemplate,
        description="Pod settings of every flow-run pod: service account, resources, env, "
        "scheduling, volumes and a free-form pod patch.",
    )
    result_storage: ResultStorage | None = Field(
        default=None,
        description="Where results, caches and artifacts are stored. Unset uses the pod's "
        "local `HEADWATER_HOME` (lost with the pod).",
    )
    run_store: RunStore | None = Field(
        default=None,
        description="Where each attempt's run record (task runs, logs, artifacts, lineage) "
        "is kept, when it must live apart from `resultStorage`; `url: off` keeps none. The "
        "store is, in order: this, else `resultStorage`, else the operator's default (the "
        "chart's `runStore.url`); with none, the record stays in the pod and is lost with "
        "it. See docs/run-store.md.",
    )
    history: HistorySpec = Field(
        default_factory=HistorySpec,
        description="How many finished FlowRuns to keep, and for how long.",
    )
    retries: StrictInt | None = Field(
        default=None, ge=0, description="Overrides the Flow's `retries`. Unset inherits it."
    )
    retry_delay_seconds: StrictInt | None = Field(
        default=None,
        ge=0,
        description="Overrides the Flow's `retryDelaySeconds`. Unset inherits it.",
    )
    retry_backoff_factor: StrictFloat = Field(
        default=1.0,
        ge=1.0,
        description="Each retry waits this factor times longer than the previous one "
        "(1 = constant delay, 2 = doubling). Default 1.",
    )
    retry_max_delay_seconds: StrictInt | None = Field(
        default=None,
        ge=0,
        description="Upper bound of the delay between retries. Unset means no bound.",
    )
    retry_on: list[RetryCause] = Field(
        default_factory=lambda: [RetryCause.FAILED, RetryCause.CRASHED],
        json_schema_extra={"x-kubernetes-list-type": "set"},
        description="Which attempt outcomes are retried: `Failed` (the code failed), "
        "`Crashed` (the infrastructure failed). Default both.",
    )
    timeout_seconds: StrictInt | None = Field(
        default=None,
        ge=1,
        description="Overrides the Flow's `timeoutSeconds`. Unset inherits it.",
    )
    pending_timeout_seconds: StrictInt = Field(
        default=600,
        ge=1,
        description="A pod not running after this many seconds (unschedulable, image pull "
        "failing) marks the attempt Crashed. Default 600.",
    )
    late_after_seconds: StrictInt = Field(
        default=60,
        ge=0,
        description="A run not started this many seconds after its scheduled time is shown "
        "as `Late`. Default 60.",
    )
    cancel_grace_period_seconds: StrictInt = Field(
        default=30,
        ge=0,
        description="Seconds a cancelled run's pod gets between SIGTERM and SIGKILL. "
        "Default 30.",
    )
    triggers: list[DeploymentTrigger] = Field(
        default_factory=list,
        max_length=MAX_TRIGGERS,
        json_schema_extra={"x-kubernetes-validations": [{
            "rule": "self.filter(t, has(t.assets)).size() <= 1",
            "message": "at most one assets trigger per Deployment"}]},
        description="Run this Deployment when another one's run ends (`afterDeployment`) "
        "or when its upstream assets are fresh (`assets`); each triggering event creates "
        "exactly one run. Only runs that end after a trigger is declared count, and none "
        "while `paused`. See docs/triggers.md.",
    )


class LastRun(StatusModel):
    """Summary of the most recently created FlowRun of a Deployment."""

    name: str = Field(description="Name of the FlowRun.")
    phase: FlowRunPhase | None = Field(default=None, description="Its current phase.")
    scheduled_time: datetime | None = Field(default=None, description="When it was due.")
    end_time: datetime | None = Field(default=None, description="When it finished, if it did.")


class TriggerStatus(StatusModel):
    """Since when one trigger counts upstream runs."""

    trigger: str = Field(description="The trigger: `afterDeployment/<name>` or `assets`.")
    since: datetime = Field(
        description="Upstream runs that ended before this do not trigger: when the trigger "
        "was declared, when the Deployment was last seen paused, or (`assets`) when it "
        "last fired.")
    covered: list[str] = Field(
        default_factory=list,
        description="`assets`: uids of the runs whose materializations the last fire "
        "used (they ended within the second of `since`, and are not new).")


class DeploymentStatus(StatusModel):
    """Observed state of a Deployment, written by the operator."""

    conditions: list[Condition] = Field(
        default_factory=list,
        description="Current conditions; `Ready` is false with a reason when the Flow is "
        "missing or invalid.",
    )
    observed_generation: StrictInt | None = Field(
        default=None, description="The `metadata.generation` the operator last acted on."
    )
    active_runs: StrictInt = Field(
        default=0, ge=0, description="Runs in Pending, Running, Retrying or Cancelling."
    )
    queued_runs: StrictInt = Field(
        default=0, ge=0, description="Runs waiting in AwaitingConcurrencySlot."
    )
    last_run: LastRun | None = Field(default=None, description="The most recent run.")
    triggers: list[TriggerStatus] = Field(
        default_factory=list,
        description="Since when each of `spec.triggers` counts upstream runs (written by "
        "the operator's triggers controller).",
    )


class Deployment(Resource):
    """A runnable configuration of a Flow. Schedules and FlowRuns reference it by name."""

    KIND: ClassVar[str] = "Deployment"
    PLURAL: ClassVar[str] = "deployments"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("hwdeploy", "hwd")
    PRINTER_COLUMNS: ClassVar[tuple[PrinterColumn, ...]] = (
        PrinterColumn("Flow", ".spec.flowRef.name", "string", "The Flow this deploys."),
        PrinterColumn("Paused", ".spec.paused", "boolean", "Whether new runs are held."),
        PrinterColumn("Active", ".status.activeRuns", "integer", "Active runs."),
        PrinterColumn("Queued", ".status.queuedRuns", "integer", "Runs awaiting a slot.", 1),
        AGE_COLUMN,
    )

    kind: Literal["Deployment"] = Field(
        default="Deployment", description="Kind of this object: `Deployment`."
    )
    metadata: ObjectMeta = Field(default_factory=ObjectMeta, description="Standard metadata.")
    spec: DeploymentSpec = Field(description="Desired state: flow, parameters, pods, limits.")
    status: DeploymentStatus = Field(
        default_factory=DeploymentStatus, description="Observed state, written by the operator."
    )
    ROOT_VALIDATIONS: ClassVar[tuple[dict[str, str], ...]] = ({
        "rule": "!has(self.spec.triggers) || !has(self.metadata.name) || "
        "self.spec.triggers.all(t, !has(t.afterDeployment) || "
        "t.afterDeployment.name != self.metadata.name)",
        "message": "spec.triggers: a trigger names its own Deployment, which would run "
        "itself forever; name another Deployment in afterDeployment.name",
    },)

    @model_validator(mode="after")
    def _triggers_name_others(self) -> Deployment:
        seen: set[str] = set()
        for index, trigger in enumerate(self.spec.triggers):
            where = f"spec.triggers[{index}]"
            if trigger.assets is not None:
                if "/assets" in seen:
                    raise FieldValueError(f"{where}.assets", "at most one assets trigger per "
                                          "Deployment; merge their upstream lists")
                seen.add("/assets")
                continue
            upstream = trigger.after_deployment.name if trigger.after_deployment else ""
            if upstream == self.metadata.name:
                raise FieldValueError(f"{where}.afterDeployment.name", (
                    "names this Deployment itself, which would run itself forever; name "
                    "another Deployment"))
            if upstream in seen:
                raise FieldValueError(f"{where}.afterDeployment.name", (
                    f"Deployment {upstream!r} is named by two triggers; merge them into one"))
            seen.add(upstream)
        return self
