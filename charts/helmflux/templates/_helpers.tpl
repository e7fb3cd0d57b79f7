{{- define "helmflux.labels" -}}
app.kubernetes.io/name: helmflux
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end }}

{{- define "helmflux.selector" -}}
app.kubernetes.io/name: helmflux
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "helmflux.fullname" -}}
{{- printf "%s-operator" .Release.Name | trunc 63 | trimSuffix "-" }}
{{- end }}
