{{/*
Naming and labels shared by every template. Names are truncated to 63 characters because
several fields (label values, Service names) are DNS labels.
*/}}

{{- define "headwater.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "headwater.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "headwater.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object the chart creates (Kubernetes recommended labels). */}}
{{- define "headwater.labels" -}}
helm.sh/chart: {{ include "headwater.chart" . }}
{{ include "headwater.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: headwater
{{- end }}

{{/* Immutable subset used in selectors: never add a label here after a release. */}}
{{- define "headwater.selectorLabels" -}}
app.kubernetes.io/name: {{ include "headwater.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "headwater.operatorSelectorLabels" -}}
{{ include "headwater.selectorLabels" . }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "headwater.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "headwater.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false: name an existing ServiceAccount" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "headwater.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{- define "headwater.metricsServiceName" -}}
{{- printf "%s-metrics" (include "headwater.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* True (non-empty) when the operator watches the whole cluster. */}}
{{- define "headwater.clusterWide" -}}
{{- if not .Values.watchNamespaces }}true{{- end }}
{{- end }}

{{/* The Lease the replicas elect their leader with (coordination.k8s.io/v1, release namespace). */}}
{{- define "headwater.leaseName" -}}
{{- default (include "headwater.fullname" .) .Values.leaderElection.resourceName }}
{{- end }}

{{/*
A leader-election duration in whole seconds. values.schema.json admits "<n>s", "<n>m" and
a plain number of seconds (a YAML number arrives as a float64: `int` keeps 1000000 from
printing as 1e+06).
*/}}
{{- define "headwater.seconds" -}}
{{- if kindIs "string" . }}
{{- if hasSuffix "m" . }}{{ mul (atoi (trimSuffix "m" .)) 60 }}{{ else }}{{ atoi (trimSuffix "s" .) }}{{ end }}
{{- else }}
{{- int . }}
{{- end }}
{{- end }}

{{/*
Checks values.schema.json cannot express (JSON Schema compares no two values); renders
nothing. Every template that reads leaderElection or podDisruptionBudget includes it
first: `helm upgrade --reuse-values` from a peering release renders with the old chart's
values, which have neither, and the first template to fail must say why. The timing rules are client-go's
(tools/leaderelection/leaderelection.go NewLeaderElector: leaseDuration > renewDeadline >
JitterFactor 1.2 × retryPeriod), which kube-controller-manager's --leader-elect-* flags
obey too.
*/}}
{{- define "headwater.validate" -}}
{{- $removed := list }}
{{- if hasKey .Values "peering" }}{{ $removed = append $removed "peering" }}{{ end }}
{{- if hasKey .Values.crds "kopfPeering" }}{{ $removed = append $removed "crds.kopfPeering" }}{{ end }}
{{- if $removed }}
{{- fail (printf "%s: kopf peering was removed; every replica now takes part in leader election on a Lease (leaderElection; its name is leaderElection.resourceName, default: the release fullname). Delete %s from your values (`helm upgrade --reuse-values` brings back the old chart's defaults: pass your values file or use --reset-then-reuse-values), and see docs/install.md, \"Upgrading from kopf peering\", for what the old release left behind." (join ", " $removed) (join " and " $removed)) }}
{{- end }}
{{- $le := .Values.leaderElection }}
{{- $lease := include "headwater.seconds" $le.leaseDuration | atoi }}
{{- $renew := include "headwater.seconds" $le.renewDeadline | atoi }}
{{- $retry := include "headwater.seconds" $le.retryPeriod | atoi }}
{{- if le $lease $renew }}
{{- fail (printf "leaderElection.renewDeadline (%ds) must be shorter than leaderElection.leaseDuration (%ds): a leader that cannot renew the Lease keeps working until renewDeadline, and a standby takes over after leaseDuration, so otherwise two replicas would work at once. Lower leaderElection.renewDeadline or raise leaderElection.leaseDuration (defaults: 10s and 15s)." $renew $lease) }}
{{- end }}
{{- if le (mul $renew 5) (mul $retry 6) }}
{{- fail (printf "leaderElection.retryPeriod (%ds) must be shorter than leaderElection.renewDeadline (%ds) divided by 1.2: the leader retries a failed renewal every retryPeriod and must get more than one try before renewDeadline, and client-go's leader election (kube-controller-manager's too) requires renewDeadline > 1.2 × retryPeriod. Lower leaderElection.retryPeriod or raise leaderElection.renewDeadline (defaults: 2s and 10s)." $retry $renew) }}
{{- end }}
{{- end }}

{{/* Metadata added to every Headwater CRD the chart renders. */}}
{{- define "headwater.crdAnnotations" -}}
{{- if .Values.crds.keep -}}
helm.sh/resource-policy: keep
{{- end }}
{{- end }}

{{/* The UI (ui.enabled): its objects are named <fullname>-ui. */}}
{{- define "headwater.uiName" -}}
{{- printf "%s-ui" (include "headwater.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "headwater.uiSelectorLabels" -}}
{{ include "headwater.selectorLabels" . }}
app.kubernetes.io/component: ui
{{- end }}

{{- define "headwater.uiServiceAccountName" -}}
{{- if .Values.ui.serviceAccount.create }}
{{- default (include "headwater.uiName" .) .Values.ui.serviceAccount.name }}
{{- else }}
{{- required "ui.serviceAccount.name is required when ui.serviceAccount.create is false: name an existing ServiceAccount (it needs only the read-only rules of docs/ui.md)" .Values.ui.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The namespaces the UI shows, one per line: ui.namespaces, else the operator's
watchNamespaces; empty means the whole cluster.
*/}}
{{- define "headwater.uiNamespaces" -}}
{{- join "\n" (default .Values.watchNamespaces .Values.ui.namespaces) }}
{{- end }}

{{/*
The UI's public address: ui.url, else http(s)://<ui.ingress.host> when an Ingress with a
host (not a wildcard) is rendered, else empty.
*/}}
{{- define "headwater.uiUrl" -}}
{{- $ing := .Values.ui.ingress }}
{{- if .Values.ui.url }}
{{- .Values.ui.url | trimSuffix "/" }}
{{- else if and $ing.enabled $ing.host (not (hasPrefix "*" $ing.host)) }}
{{- printf "%s://%s%s" (ternary "https" "http" (not (empty $ing.tls.secretName))) $ing.host ($ing.path | trimSuffix "/") }}
{{- end }}
{{- end }}
