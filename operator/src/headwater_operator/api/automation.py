"""``Automation``: what happens when a FlowRun changes phase, recovers, or a Deployment goes
stale — notify through a block, run a Deployment, cancel the run, pause its Deployment.

The controller (:mod:`headwater_operator.controllers.automations`) reads these models;
the CRD is generated from them, so every rule the models check on parse is also a schema
or CEL rule the API server enforces on write (docs/automations.md).

``status.ledger`` is the controller's durable record of deliveries (the exactly-once
mechanism, docs/automations.md, "The guarantee"); users never write it.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal

from pydantic import (
    ConfigDict,
    Field,
    JsonValue,
    StrictInt,
    model_validator,
)

from headwater_operator.api.common import (
    Condition,
    LocalObjectReference,
    ObjectMeta,
    SpecModel,
    StatusModel,
)
from headwater_operator.api.enums import FlowRunPhase
from headwater_operator.api.resource import AGE_COLUMN, PrinterColumn, Resource

_DURATION = r"^([0-9]+[smhd])+$"
_ONE_OF_TRIGGERS: list[JsonValue] = [{
    "rule": "[has(self.runPhase), has(self.freshness), has(self.recovery)]"
            ".filter(x, x).size() == 1",
    "message": "set exactly one of trigger.runPhase, trigger.freshness or trigger.recovery",
}]
_ONE_OF_ACTIONS: list[JsonValue] = [{
    "rule": "[has(self.notify), has(self.runDeployment), has(self.cancelRun), "
            "has(self.suspend)].filter(x, x).size() == 1",
    "message": "set exactly one of notify, runDeployment, cancelRun or suspend in each action",
}]
_FRESHNESS_WITHIN: list[JsonValue] = [{
    "rule": "has(self.withinSeconds) != has(self.within)",
    "message": "set exactly one of freshness.within (a duration such as 6h) or "
               "freshness.withinSeconds",
}]
TEMPLATE_MAX_LENGTH = 16_384


def duration_seconds(text: str) -> int:
    """``1h30m`` → 5400 (units s, m, h, d; a day is 24 hours)."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    total, number = 0, ""
    for char in text:
        if char.isdigit():
            number += char
        else:
            total += int(number) * units[char]
            number = ""
    return total


class LabelSelector(SpecModel):
    """Runs whose labels carry every one of these key/value pairs."""

    match_labels: dict[str, str] = Field(
        default_factory=dict, description="Labels a run must carry, e.g. `{team: data}`.")


class RunSelector(SpecModel):
    """Which runs a trigger looks at. Every field set must match (empty: all runs of the
    namespace)."""

    deployments: list[str] = Field(
        default_factory=list, max_length=64,
        description="Runs of any of these Deployments (by name).")
    flows: list[str] = Field(
        default_factory=list, max_length=64,
        description="Runs of any of these Flows (`spec.flowRef`, or the Deployment's Flow).")
    label_selector: LabelSelector | None = Field(
        default=None, description="Runs whose labels match.")
    tags: list[str] = Field(
        default_factory=list, max_length=64,
        description="Runs of Deployments carrying any of these tags (`spec.tags`).")


class RunPhaseTrigger(SpecModel):
    """A selected run entered one of `phases` (and, if set, with one of `reasons`)."""

    phases: list[FlowRunPhase] = Field(
        min_length=1, max_length=12,
        description="Phases that fire, e.g. `[Failed, Crashed]`. `Late` fires when a run "
        "becomes late; terminal phases fire once per run.")
    reasons: list[str] = Field(
        default_factory=list, max_length=32,
        description="Only runs whose `status.reason` is one of these, e.g. `[TimedOut]` "
        "(a run that exceeded `timeoutSeconds` ends `Failed` with reason `TimedOut`).")
    selector: RunSelector = Field(default_factory=RunSelector,
                                  description="Which runs; empty: every run.")


class RecoveryTrigger(SpecModel):
    """A selected run went `Completed` and the previous finished run of its Deployment
    had `Failed` or `Crashed`."""

    selector: RunSelector = Field(default_factory=RunSelector,
                                  description="Which runs; empty: every run.")


class FreshnessTrigger(SpecModel):
    """No run of `deployment` completed within the last `within`: fires once per stale
    episode (the next completed run starts a new one)."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": _FRESHNESS_WITHIN})

    deployment: str = Field(min_length=1, max_length=253,
                            description="The Deployment whose runs must complete.")
    within: str | None = Field(
        default=None, pattern=_DURATION, max_length=32,
        description="A duration such as `6h`, `90m` or `1d12h`.")
    within_seconds: StrictInt | None = Field(
        default=None, ge=1, description="The same, in seconds.")

    @model_validator(mode="after")
    def _one_within(self) -> FreshnessTrigger:
        if (self.within is None) == (self.within_seconds is None):
            raise ValueError("set exactly one of freshness.within (a duration such as 6h) "
                             "or freshness.withinSeconds")
        return self

    @property
    def seconds(self) -> int:
        """The freshness bound in seconds."""
        if self.within_seconds is not None:
            return self.within_seconds
        return duration_seconds(self.within or "0s")


class Trigger(SpecModel):
    """What fires the automation: exactly one of `runPhase`, `freshness`, `recovery`."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": _ONE_OF_TRIGGERS})

    run_phase: RunPhaseTrigger | None = Field(default=None, description="A run's phase.")
    freshness: FreshnessTrigger | None = Field(
        default=None, description="No successful run of a Deployment within a duration.")
    recovery: RecoveryTrigger | None = Field(
        default=None, description="A run completed after a failed one.")

    @model_validator(mode="after")
    def _one(self) -> Trigger:
        if sum(x is not None for x in (self.run_phase, self.freshness, self.recovery)) != 1:
            raise ValueError("set exactly one of trigger.runPhase, trigger.freshness or "
                             "trigger.recovery")
        return self

    @property
    def kind(self) -> str:
        """``runPhase``, ``freshness`` or ``recovery``."""
        if self.run_phase is not None:
            return "runPhase"
        return "freshness" if self.freshness is not None else "recovery"


class NotifyAction(SpecModel):
    """Send a message through a notification block (Slack, Teams, PagerDuty, webhook,
    email)."""

    block_ref: LocalObjectReference = Field(
        description="The notification Block, in the same namespace, e.g. `{name: oncall}`.")
    subject: str = Field(
        default="{{ run.name }} is {{ run.phase }}", max_length=1024,
        description="Subject template (Jinja; fields in docs/automations.md).")
    body: str = Field(
        default="{{ run.deployment }} run {{ run.name }} is {{ run.phase }}"
        "{% if run.reason %} ({{ run.reason }}){% endif %}."
        "{% if run.message %} {{ run.message }}{% endif %}"
        "{% if run.url %} {{ run.url }}{% endif %}",
        max_length=TEMPLATE_MAX_LENGTH, description="Body template.")


class RunDeploymentAction(SpecModel):
    """Create one run of a Deployment per transition, with parameters mapped from the
    triggering run."""

    name: str = Field(min_length=1, max_length=253, description="The Deployment to run.")
    parameters: dict[str, str] = Field(
        default_factory=dict,
        description="Parameter templates, e.g. `{start_date: '{{ run.parameters.start_date "
        "}}'}`; a lone expression keeps its type.")


class CancelRunAction(SpecModel):
    """Cancel the triggering run (`spec.cancel: true`)."""


class SuspendAction(SpecModel):
    """Pause the triggering run's Deployment (`spec.paused: true`): its Schedules stop
    creating runs until someone sets it back."""


class Action(SpecModel):
    """One thing to do: exactly one of `notify`, `runDeployment`, `cancelRun`, `suspend`."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": _ONE_OF_ACTIONS})

    notify: NotifyAction | None = Field(default=None, description="Send a message.")
    run_deployment: RunDeploymentAction | None = Field(default=None,
                                                       description="Run a Deployment.")
    cancel_run: CancelRunAction | None = Field(default=None,
                                               description="Cancel the triggering run.")
    suspend: SuspendAction | None = Field(
        default=None, description="Pause the triggering run's Deployment.")

    @model_validator(mode="after")
    def _one(self) -> Action:
        chosen = [x for x in (self.notify, self.run_deployment, self.cancel_run, self.suspend)
                  if x is not None]
        if len(chosen) != 1:
            raise ValueError("set exactly one of notify, runDeployment, cancelRun or "
                             "suspend in each action")
        return self

    @property
    def type(self) -> str:
        """The action's name on the wire (``notify``, ``runDeployment``…)."""
        if self.notify is not None:
            return "notify"
        if self.run_deployment is not None:
            return "runDeployment"
        return "cancelRun" if self.cancel_run is not None else "suspend"


class AutomationSpec(SpecModel):
    """Desired state of an Automation: one trigger, one or more actions."""

    trigger: Trigger = Field(description="What fires it.")
    actions: list[Action] = Field(
        min_length=1, max_length=16,
        description="What it does, each delivered (and retried) on its own.")

    @model_validator(mode="after")
    def _run_actions(self) -> AutomationSpec:
        if self.trigger.freshness is not None:
            for index, action in enumerate(self.actions):
                if action.cancel_run is not None or action.suspend is not None:
                    raise ValueError(f"spec.actions[{index}]: {action.type} needs a "
                                     "triggering run; a freshness trigger has none")
        return self


class ActionDelivery(StatusModel):
    """One action of one transition, in the ledger."""

    action: StrictInt = Field(description="Index in `spec.actions`.")
    state: Literal["Pending", "Delivered", "Failed"] = Field(
        description="`Pending` is an intent (not yet delivered, or retrying).")
    attempts: StrictInt = Field(default=0, description="Delivery attempts so far.")
    next_attempt_time: datetime | None = Field(default=None,
                                               description="When it is tried again.")
    message: str | None = Field(default=None, description="Why the last attempt failed.")


class LedgerEntry(StatusModel):
    """A transition the automation acts on, and its actions' delivery state."""

    id: str = Field(description="The transition's key: `<run uid>/<phase>/<attempt>`, or "
                    "`freshness/<episode>`.")
    run: str | None = Field(default=None, description="The triggering run's name.")
    time: datetime = Field(description="When the transition happened.")
    actions: list[ActionDelivery] = Field(default_factory=list,
                                          description="Per action.")


class LastDelivery(StatusModel):
    """The last finished delivery of one action."""

    action: StrictInt = Field(description="Index in `spec.actions`.")
    type: str = Field(description="`notify`, `runDeployment`, `cancelRun` or `suspend`.")
    outcome: Literal["Delivered", "Failed"] = Field(description="How it ended.")
    run: str | None = Field(default=None, description="The triggering run.")
    time: datetime = Field(description="When it ended.")
    attempts: StrictInt = Field(default=1, description="Attempts it took.")
    message: str | None = Field(default=None, description="Why it failed.")


class AutomationStatus(StatusModel):
    """Observed state of an Automation, written by the operator."""

    observed_generation: StrictInt | None = Field(
        default=None, description="The `metadata.generation` the operator last acted on.")
    conditions: list[Condition] = Field(default_factory=list,
                                        description="`Ready`, `Invalid`.")
    delivered: StrictInt = Field(default=0, description="Deliveries that succeeded.")
    failed: StrictInt = Field(default=0, description="Deliveries given up on.")
    retried: StrictInt = Field(default=0, description="Failed attempts that were retried.")
    watermark: datetime | None = Field(
        default=None, description="Transitions before this instant are never acted on "
        "(the Automation's creation, raised as the ledger is pruned).")
    ledger: list[LedgerEntry] = Field(
        default_factory=list,
        description="Recent transitions and their deliveries (bounded; the operator's "
        "exactly-once record).")
    last_deliveries: list[LastDelivery] = Field(
        default_factory=list, description="The last finished delivery of each action.")


class Automation(Resource):
    """When something happens to runs, do something: notify, run, cancel, suspend."""

    KIND: ClassVar[str] = "Automation"
    PLURAL: ClassVar[str] = "automations"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("hwautomation", "hwa")
    PRINTER_COLUMNS: ClassVar[tuple[PrinterColumn, ...]] = (
        PrinterColumn("Ready", ".status.conditions[?(@.type==\"Ready\")].status", "string",
                      "Whether it acts."),
        PrinterColumn("Delivered", ".status.delivered", "integer", "Deliveries made."),
        PrinterColumn("Failed", ".status.failed", "integer", "Deliveries given up on."),
        AGE_COLUMN,
    )

    kind: Literal["Automation"] = Field(default="Automation",
                                        description="Kind of this object: `Automation`.")
    metadata: ObjectMeta = Field(default_factory=ObjectMeta, description="Standard metadata.")
    spec: AutomationSpec = Field(description="Desired state: trigger and actions.")
    status: AutomationStatus = Field(
        default_factory=AutomationStatus, description="Observed state, written by the operator.")
