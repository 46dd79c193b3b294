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

{{/* Peering is used only with more than one replica; one replica runs --standalone. */}}
{{- define "headwater.peering" -}}
{{- if gt (int .Values.replicas) 1 }}true{{- end }}
{{- end }}

{{/*
True (non-empty) when kopf's peering CRDs are rendered: crds.kopfPeering "auto" renders
them exactly when peering is used (replicas > 1); true and false force it either way
(false: another kopf operator already installed them).
*/}}
{{- define "headwater.installPeeringCRDs" -}}
{{- $mode := .Values.crds.kopfPeering }}
{{- if and .Values.crds.install (or (eq (toString $mode) "true") (and (eq (toString $mode) "auto") (include "headwater.peering" .))) }}true{{- end }}
{{- end }}

{{/* Metadata added to every Headwater CRD the chart renders. */}}
{{- define "headwater.crdAnnotations" -}}
{{- if .Values.crds.keep -}}
helm.sh/resource-policy: keep
{{- end }}
{{- end }}
