{{/* The chart name, or nameOverride. */}}
{{- define "apisix-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The full name: fullnameOverride, else the release name when it already
contains the chart name, else release-chart. */}}
{{- define "apisix-operator.fullname" -}}
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

{{/* Selector labels: stable for the life of the release. */}}
{{- define "apisix-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "apisix-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels of every object. No Helm-only labels, so the plain manifests
rendered from this chart read naturally. */}}
{{- define "apisix-operator.labels" -}}
{{ include "apisix-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "apisix-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "apisix-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "apisix-operator.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* The webhook's Service; the API server calls it by <name>.<namespace>.svc. */}}
{{- define "apisix-operator.webhookService" -}}
{{- printf "%s-webhook" (include "apisix-operator.fullname" .) }}
{{- end }}

{{/* The names in the webhook's serving certificate. */}}
{{- define "apisix-operator.webhookHosts" -}}
{{- $service := include "apisix-operator.webhookService" . }}
{{- printf "%s.%s.svc" $service .Release.Namespace }}
{{ printf "%s.%s.svc.cluster.local" $service .Release.Namespace }}
{{- end }}

{{/* The Secret of the operator-managed webhook certificate. */}}
{{- define "apisix-operator.webhookSecret" -}}
{{- printf "%s-webhook-cert" (include "apisix-operator.fullname" .) }}
{{- end }}

{{/* The Secret cert-manager writes the webhook certificate to. */}}
{{- define "apisix-operator.webhookCertManagerSecret" -}}
{{- printf "%s-webhook-tls" (include "apisix-operator.fullname" .) }}
{{- end }}

{{/* What both webhooks share: the Service, how they are called, and where
they apply (never kube-system). No caBundle: with operator-managed
certificates the leader sets it, and a field the chart never renders is one
a Helm upgrade leaves alone. */}}
{{- define "apisix-operator.webhookCommon" -}}
clientConfig:
  service:
    name: {{ include "apisix-operator.webhookService" . }}
    namespace: {{ .Release.Namespace }}
    path: /validate
    port: 443
sideEffects: None
admissionReviewVersions: ["v1"]
matchPolicy: Equivalent
timeoutSeconds: {{ .Values.webhook.timeoutSeconds }}
namespaceSelector:
  matchExpressions:
    - key: kubernetes.io/metadata.name
      operator: NotIn
      values: ["kube-system"]
{{- end }}
