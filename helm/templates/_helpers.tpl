{{/* Names and labels, the usual Helm conventions. */}}
{{- define "s2s.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "s2s.fullname" -}}
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

{{/* The container port probes and scrapes reach: "health" (its own listener) when server.healthPort is set, else "http". */}}
{{- define "s2s.probePort" -}}
{{- ternary "health" "http" (not (empty .Values.server.healthPort)) }}
{{- end }}

{{- define "s2s.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "s2s.selectorLabels" -}}
app.kubernetes.io/name: {{ include "s2s.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "s2s.labels" -}}
helm.sh/chart: {{ include "s2s.chart" . }}
{{ include "s2s.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Server pods only; the eval Job's pods carry a different component so the Service never selects them. */}}
{{- define "s2s.serverSelectorLabels" -}}
{{ include "s2s.selectorLabels" . }}
app.kubernetes.io/component: server
{{- end }}

{{- define "s2s.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "s2s.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The cpu image, or its VARIANT=cuda build (tag suffix -cuda) when serving on GPUs. */}}
{{- define "s2s.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.gpu.enabled }}{{ $tag = printf "%s-cuda" $tag }}{{ end }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/* Where the service reads model sets: the mounted volume if one is given, else the set baked into the image. */}}
{{- define "s2s.modelsDir" -}}
{{- if .Values.models.volume }}{{ .Values.models.mountPath }}{{ else }}/app/models{{ end }}
{{- end }}

{{- define "s2s.apiKeysDir" -}}/etc/s2s/api-keys{{- end }}

{{/* Volumes shared by the server and the eval Job: /tmp (the only writable path), model sets, API keys. */}}
{{- define "s2s.volumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.tmpSizeLimit }}
{{- if .Values.models.volume }}
- name: models
{{- toYaml .Values.models.volume | nindent 2 }}
{{- end }}
{{- end }}

{{- define "s2s.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
{{- if .Values.models.volume }}
- name: models
  mountPath: {{ .Values.models.mountPath }}
  readOnly: true
{{- end }}
{{- end }}

{{/* Pod placement, with the GPU node selector and tolerations merged in when gpu.enabled. */}}
{{- define "s2s.placement" -}}
{{- $nodeSelector := .Values.nodeSelector }}
{{- $tolerations := .Values.tolerations }}
{{- if .Values.gpu.enabled }}
{{- $nodeSelector = merge (deepCopy .Values.nodeSelector) .Values.gpu.nodeSelector }}
{{- $tolerations = concat .Values.tolerations .Values.gpu.tolerations }}
{{- end }}
{{- with $nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* Container resources, plus the GPU when gpu.enabled. */}}
{{- define "s2s.resources" -}}
{{- $res := deepCopy .resources }}
{{- if .root.Values.gpu.enabled }}
{{- $limits := default (dict) $res.limits }}
{{- $_ := set $limits .root.Values.gpu.resourceName .root.Values.gpu.count }}
{{- $_ := set $res "limits" $limits }}
{{- end }}
{{- toYaml $res }}
{{- end }}
