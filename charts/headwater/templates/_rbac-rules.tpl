{{- /*
RBAC rules, least privilege and no wildcards (a unit test fails on any "*"). The rules the
operator needs in every namespace it watches live in one helper so the cluster-wide
ClusterRole and the per-namespace Roles can never drift apart.
*/ -}}

{{- define "headwater.rbac.workloadRules" -}}
# Flows, Deployments and Schedules are read (list/watch feed kopf's handlers and the
# Schedule controller's own watches); patch is for kopf's own annotations and finalizers,
# and for an Automation's `suspend` action, the one spec write (a Deployment's
# spec.paused: docs/automations.md says how GitOps tools keep it).
- apiGroups: ["headwater.dev"]
  resources: ["flows", "deployments", "schedules"]
  verbs: ["get", "list", "watch", "patch"]
# FlowRuns are also created (the scheduler turns ticks into runs) and deleted (history
# limits and ttlSecondsAfterFinished prune finished runs).
- apiGroups: ["headwater.dev"]
  resources: ["flowruns"]
  verbs: ["get", "list", "watch", "patch", "create", "delete"]
# Blocks and Variables are read (list/watch feed the stores a run's pod is built from);
# never written by the operator.
- apiGroups: ["headwater.dev"]
  resources: ["blocks", "variables"]
  verbs: ["get", "list", "watch"]
# Secrets that Blocks' secret fields name: a run about to get a pod GETs each one for its
# key names (values are dropped at once, never logged or cached), and a metadata-only
# watch (PartialObjectMetadata: no data is sent) wakes a run waiting for one. RBAC has no
# metadata-only verb, so list/watch are granted on Secrets as a whole.
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "list", "watch"]
# Automations are read (list/watch feed the automations controller); their spec is never
# written. Their actions create FlowRuns (runDeployment) and patch FlowRuns (cancelRun)
# and Deployments (suspend: spec.paused), covered by the rules above.
- apiGroups: ["headwater.dev"]
  resources: ["automations"]
  verbs: ["get", "list", "watch"]
# Status is written only through the status subresource (phase, conditions, counts; an
# Automation's delivery ledger).
- apiGroups: ["headwater.dev"]
  resources: ["flows/status", "deployments/status", "schedules/status", "flowruns/status",
              "automations/status"]
  verbs: ["get", "patch"]
# One pod per FlowRun attempt: created, watched (headwater-labelled only) for its phase and
# termination message, deleted on cancel and timeout. No pods/log: `headwater logs` uses
# the caller's own credentials.
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list", "watch", "create", "delete"]
# Events explain what happened to a run in `kubectl describe` (both Event APIs: kopf posts
# core/v1 Events, newer clients events.k8s.io/v1).
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end }}

{{- define "headwater.rbac.discoveryRules" -}}
# Cluster-wide mode only. kopf lists and watches CRDs to start serving Headwater's
# resources when their CRDs appear or change, without a restart (kopf 1.45
# _core/reactor/observation.py resource_observer; runner.build_settings leaves kopf's
# scanning on only cluster-wide). Namespaces are neither listed nor watched cluster-wide
# (observation.py namespace_observer: only for namespace patterns in namespaced mode,
# where scanning is off). API discovery (/apis/headwater.dev/v1alpha1) needs no rule:
# the system:discovery ClusterRole grants it to every authenticated user.
- apiGroups: ["apiextensions.k8s.io"]
  resources: ["customresourcedefinitions"]
  verbs: ["list", "watch"]
{{- end }}

{{- define "headwater.rbac.leaderElectionRules" -}}
# Every controller runs only in the replica holding the Lease the operator is given with
# --leader-elect-resource-name (coordination.k8s.io, as kube-controller-manager does).
# Reads and writes are limited to that one Lease; create cannot be limited by name (the
# object does not exist yet), and list/watch are not needed (the operator gets it by name).
- apiGroups: ["coordination.k8s.io"]
  resources: ["leases"]
  resourceNames: [{{ include "headwater.leaseName" . | quote }}]
  verbs: ["get", "patch", "update"]
- apiGroups: ["coordination.k8s.io"]
  resources: ["leases"]
  verbs: ["create"]
{{- end }}

{{- /*
The user-facing roles (rbac-user-roles.yaml): what people and CI hold, never the operator.
Status subresources are not granted: status is the operator's, as Kubernetes' own
"edit" leaves `/status` to the system (bootstrap policy). docs/cli.md lists which
command needs which.
*/ -}}
{{- define "headwater.rbac.viewRules" -}}
# Read every Headwater object (`headwater get`, `describe`, `logs`, `block get|describe`,
# `variable get|ls`; kubectl get/describe). Blocks hold no secret values; the Secrets
# their secret fields name are not readable with view (Kubernetes' view has no Secrets).
- apiGroups: ["headwater.dev"]
  resources: ["flows", "deployments", "schedules", "flowruns", "blocks", "variables",
              "concurrencylimits", "automations"]
  verbs: ["get", "list", "watch"]
{{- end }}

{{- define "headwater.rbac.editRules" -}}
# Write them (`headwater run`, `backfill`, `cancel`, `block create|delete`, `variable
# set|unset`; kubectl apply/delete; Automations). Writing a Flow or a Deployment defines pods:
# admission-policy.yaml also requires `create pods` for it. A block's secret fields go to
# a Secret: Kubernetes' edit writes Secrets; this role alone does not (docs/cli.md).
# ConcurrencyLimits are declared here; their slots are Leases the flow-run pods write
# with their own service account (docs/concurrency.md), never with these roles.
- apiGroups: ["headwater.dev"]
  resources: ["flows", "deployments", "schedules", "flowruns", "blocks", "variables",
              "concurrencylimits", "automations"]
  verbs: ["create", "update", "patch", "delete", "deletecollection"]
{{- end }}

{{- /*
The UI's own ServiceAccount (ui-rbac.yaml): read-only, whatever ui.auth is. In client mode
writes are made with the user's token, never with this account. No Secrets, no
ConfigMaps, no exec: pods and their logs are read for the runs' attempts.
*/ -}}
{{- define "headwater.rbac.uiReadRules" -}}
# The pages and their watches (informers): runs, deployments, schedules, flows, automations.
- apiGroups: ["headwater.dev"]
  resources: ["flows", "deployments", "schedules", "flowruns", "automations"]
  verbs: ["get", "list", "watch"]
# A run's Kubernetes Events (core/v1, as kopf posts them) and its attempts' pods.
- apiGroups: [""]
  resources: ["events", "pods"]
  verbs: ["get", "list", "watch"]
# A running attempt's log, followed live (get with follow=true); list and watch mean
# nothing for pods/log.
- apiGroups: [""]
  resources: ["pods/log"]
  verbs: ["get"]
{{- end }}
