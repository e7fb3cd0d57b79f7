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

{{- /* The labels that select one Deployment's Pods: the main instance's
(shard "") are the chart's selector, as they have always been (a
Deployment's selector cannot change); a shard's Pods are
app.kubernetes.io/name=helmflux-shard, so that neither the main
Deployment, nor its Service, nor the CLI's default --k8s-fwd-labels
(app.kubernetes.io/name=helmflux) take them for the main instance's.
Called with (list $ shard). */ -}}
{{- define "helmflux.podSelector" -}}
{{- $root := index . 0 -}}
{{- $shard := index . 1 -}}
{{- if $shard -}}
app.kubernetes.io/name: helmflux-shard
app.kubernetes.io/instance: {{ $root.Release.Name }}
helmflux.dev/shard: {{ $shard }}
{{- else -}}
{{- include "helmflux.selector" $root -}}
{{- end -}}
{{- end }}

{{- /* sharding.shards as a JSON list, each checked: a label value (it
goes into a label selector and a label) that also makes a valid name. */ -}}
{{- define "helmflux.shards" -}}
{{- $seen := dict -}}
{{- range .Values.sharding.shards -}}
{{- $s := toString . -}}
{{- if not (regexMatch "^[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?$" $s) -}}
{{- fail (printf "sharding.shards: %q is not a shard name: want lower case letters, digits and '-', at most 40, starting and ending with a letter or digit" $s) -}}
{{- end -}}
{{- if hasKey $seen $s -}}
{{- fail (printf "sharding.shards: %q is listed twice" $s) -}}
{{- end -}}
{{- $_ := set $seen $s true -}}
{{- end -}}
{{- .Values.sharding.shards | default list | toJson -}}
{{- end }}
