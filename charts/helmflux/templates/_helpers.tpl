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

{{- /* The Deployment's replicas: more than one need leader election, or
every replica would reconcile the same objects and race. */ -}}
{{- define "helmflux.replicas" -}}
{{- $n := int .Values.replicas -}}
{{- if lt $n 1 -}}
{{- fail (printf "replicas is %d: want 1 or more" $n) -}}
{{- end -}}
{{- if and (gt $n 1) (not .Values.leaderElect) -}}
{{- fail (printf "replicas is %d but leaderElect is false: every replica would reconcile the same objects; set leaderElect: true (one replica leads, the others stand by) or replicas: 1" $n) -}}
{{- end -}}
{{- $n -}}
{{- end }}
