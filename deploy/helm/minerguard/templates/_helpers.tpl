{{- define "minerguard.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "minerguard.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "minerguard.selectorLabels" -}}
app.kubernetes.io/name: {{ include "minerguard.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "minerguard.labels" -}}
{{ include "minerguard.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "minerguard.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "minerguard.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The runtime socket: host path, and where the sensor looks for it (workload.DefaultCRIEndpoints, workload.DefaultDockerSocket). */}}
{{- define "minerguard.runtimeMountPath" -}}
{{- $t := .Values.runtime.type -}}
{{- if eq $t "containerd" -}}/run/containerd/containerd.sock
{{- else if eq $t "crio" -}}/run/crio/crio.sock
{{- else if eq $t "docker" -}}/var/run/docker.sock
{{- end -}}
{{- end -}}

{{/* The sensor's config file: values turned into the keys `minerguard sensor --config` reads. */}}
{{- define "minerguard.config" -}}
{{- $intel := .Values.intel.files -}}
{{- $cfg := dict "mode" .Values.mode "proc_root" "/host/proc" "state_dir" "/var/lib/minerguard" "profiles" .Values.profiles "web" (dict "listen_address" (printf ":%d" (int .Values.metrics.port))) "capture" (dict "bypass" .Values.capture.bypass) -}}
{{- if $intel -}}
{{- $_ := set $cfg "intel" (dict "files" $intel) -}}
{{- end -}}
{{- toYaml (mustMergeOverwrite $cfg (deepCopy .Values.config)) -}}
{{- end -}}
