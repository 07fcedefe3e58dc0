{{/* The chart name, at most 63 characters. */}}
{{- define "leadhook.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The prefix of every resource name: fullnameOverride, else the release name when it contains
the chart name, else "<release>-<chart>". At most 52 characters, leaving room for suffixes.
*/}}
{{- define "leadhook.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Labels of every resource. */}}
{{- define "leadhook.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "leadhook.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: leadhook
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Selector labels of a component: include "leadhook.selectorLabels" (list . "controller"). */}}
{{- define "leadhook.selectorLabels" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: {{ include "leadhook.name" $root }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{/* All labels of a component's resources: include "leadhook.componentLabels" (list . "controller"). */}}
{{- define "leadhook.componentLabels" -}}
{{ include "leadhook.labels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{/* Names of the two components' resources. */}}
{{- define "leadhook.controller.fullname" -}}
{{- printf "%s-controller" (include "leadhook.fullname" .) }}
{{- end }}
{{- define "leadhook.server.fullname" -}}
{{- printf "%s-server" (include "leadhook.fullname" .) }}
{{- end }}

{{/* ServiceAccount names. */}}
{{- define "leadhook.controller.serviceAccountName" -}}
{{- if .Values.controller.serviceAccount.create }}
{{- default (include "leadhook.controller.fullname" .) .Values.controller.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.controller.serviceAccount.name }}
{{- end }}
{{- end }}
{{- define "leadhook.server.serviceAccountName" -}}
{{- if .Values.webhookServer.serviceAccount.create }}
{{- default (include "leadhook.server.fullname" .) .Values.webhookServer.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.webhookServer.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* A pod spec's placement fields from a component's values (nodeSelector, tolerations, ...). */}}
{{- define "leadhook.podPlacement" -}}
{{- range $field := list "nodeSelector" "tolerations" "affinity" "topologySpreadConstraints" }}
{{- with get $ $field }}
{{ $field }}:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}
{{- end }}

{{/* The image reference: repository, then @digest or :tag (default: appVersion). */}}
{{- define "leadhook.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* The webhook server's replicas: 1 with the embedded store, else webhookServer.replicas (default 2). */}}
{{- define "leadhook.server.replicas" -}}
{{- if .Values.embeddedStore.enabled }}1{{ else }}{{ .Values.webhookServer.replicas | default 2 | int }}{{ end }}
{{- end }}

{{/* The webhook server pod's termination grace period in seconds. */}}
{{- define "leadhook.server.terminationGracePeriodSeconds" -}}
{{- $s := .Values.webhookServer }}
{{- if kindIs "invalid" $s.terminationGracePeriodSeconds }}
{{- add $s.preStopSleepSeconds $s.shutdownTimeoutSeconds 10 }}
{{- else }}
{{- $s.terminationGracePeriodSeconds | int }}
{{- end }}
{{- end }}

{{/* Name of the embedded store's claim. */}}
{{- define "leadhook.embeddedStore.claimName" -}}
{{- default (printf "%s-data" (include "leadhook.server.fullname" .)) .Values.embeddedStore.persistence.existingClaim }}
{{- end }}

{{/*
The path an integration serves: spec.path, else the source's default. The server's own
default table (webhookserver/registry) is the authority; this mirrors it for NOTES.txt.
*/}}
{{- define "leadhook.integrationPath" -}}
{{- if .spec.path }}{{ .spec.path }}{{ else if eq .spec.source "Taplink" }}/api/taplink/lead{{ else }}/api/lead{{ end }}
{{- end }}

{{/* Seconds in a Prometheus duration such as 30s, 1m30s or 500ms (the schema checks its form). */}}
{{- define "leadhook.durationSeconds" -}}
{{- $unit := dict "ms" 0.001 "s" 1.0 "m" 60.0 "h" 3600.0 "d" 86400.0 "w" 604800.0 "y" 31536000.0 }}
{{- $total := 0.0 }}
{{- range regexFindAll "[0-9]+(ms|[ywdhms])" . -1 }}
{{- $n := regexFind "^[0-9]+" . }}
{{- $total = addf $total (mulf (float64 $n) (get $unit (trimPrefix $n .))) }}
{{- end }}
{{- $total }}
{{- end }}

{{/*
"true" when the webhook server runs as a StatefulSet whose pods each keep a spool claim of
their own (webhookServer.spool.persistence), "" when it is a Deployment.
*/}}
{{- define "leadhook.server.persistentSpool" -}}
{{- $s := .Values.webhookServer }}
{{- if and $s.spool.enabled $s.spool.persistence.enabled (not .Values.embeddedStore.enabled) }}true{{ end }}
{{- end }}

{{/*
The webhook server's workload kind.
*/}}
{{- define "leadhook.server.kind" -}}
{{- ternary "StatefulSet" "Deployment" (eq (include "leadhook.server.persistentSpool" .) "true") }}
{{- end }}

{{/*
A Kubernetes quantity ("512Mi", "1G", "1.5Gi", "1000") in bytes, as a float.
*/}}
{{- define "leadhook.quantityBytes" -}}
{{- $unit := dict "" 1.0 "k" 1e3 "M" 1e6 "G" 1e9 "T" 1e12 "P" 1e15 "E" 1e18 "Ki" 1024.0 "Mi" 1048576.0 "Gi" 1073741824.0 "Ti" 1099511627776.0 "Pi" 1125899906842624.0 "Ei" 1152921504606846976.0 }}
{{- $n := regexFind "^[0-9]+(\\.[0-9]+)?" (toString .) }}
{{- mulf (float64 $n) (get $unit (trimPrefix $n (toString .))) }}
{{- end }}

{{/*
A PodDisruptionBudget's spec body: include "leadhook.pdbSpec" (list .Values.x.podDisruptionBudget "minAvailable")
names the field used, with 1, when the value sets neither minAvailable nor maxUnavailable.
*/}}
{{- define "leadhook.pdbSpec" -}}
{{- $pdb := index . 0 }}
{{- if not (or (hasKey $pdb "minAvailable") (hasKey $pdb "maxUnavailable")) }}
{{ index . 1 }}: 1
{{- end }}
{{- if hasKey $pdb "minAvailable" }}
minAvailable: {{ $pdb.minAvailable }}
{{- end }}
{{- if hasKey $pdb "maxUnavailable" }}
maxUnavailable: {{ $pdb.maxUnavailable }}
{{- end }}
{{- end }}

{{/*
Checks of value combinations a schema cannot express. Rendering fails with a message that
says what to change.
*/}}
{{- define "leadhook.validate" -}}
{{- $s := .Values.webhookServer }}
{{- if and (not .Values.mongo.existingSecret) (not .Values.embeddedStore.enabled) }}
{{- fail "\nleadhook needs somewhere to store leads: set mongo.existingSecret to a Secret holding the MongoDB connection string (key mongo.uriKey, default \"uri\"), or set embeddedStore.enabled=true for a single-replica trial store on a PersistentVolumeClaim." }}
{{- end }}
{{- if and .Values.mongo.existingSecret .Values.embeddedStore.enabled }}
{{- fail "\nmongo.existingSecret and embeddedStore.enabled exclude each other: leads go either to your MongoDB or to the embedded store. Unset one of them." }}
{{- end }}
{{- if .Values.embeddedStore.enabled }}
{{- if and (not (kindIs "invalid" $s.replicas)) (gt (int $s.replicas) 1) }}
{{- fail (printf "\nembeddedStore.enabled runs the store inside one webhook-server pod on a ReadWriteOnce volume: webhookServer.replicas must be 1 (or unset), not %v. Point mongo.existingSecret at a MongoDB to scale out." $s.replicas) }}
{{- end }}
{{- if $s.autoscaling.enabled }}
{{- fail "\nembeddedStore.enabled runs the store inside one webhook-server pod: webhookServer.autoscaling.enabled must be false. Point mongo.existingSecret at a MongoDB to autoscale." }}
{{- end }}
{{- end }}
{{- if and $s.autoscaling.enabled (gt (int $s.autoscaling.minReplicas) (int $s.autoscaling.maxReplicas)) }}
{{- fail "\nwebhookServer.autoscaling.minReplicas must not exceed maxReplicas." }}
{{- end }}
{{- if and $s.autoscaling.enabled (kindIs "invalid" $s.autoscaling.targetCPUUtilizationPercentage) (kindIs "invalid" $s.autoscaling.targetMemoryUtilizationPercentage) }}
{{- fail "\nwebhookServer.autoscaling needs targetCPUUtilizationPercentage or targetMemoryUtilizationPercentage." }}
{{- end }}
{{- range $name, $pdb := dict "controller" .Values.controller.podDisruptionBudget "webhookServer" $s.podDisruptionBudget }}
{{- if and $pdb.enabled (hasKey $pdb "minAvailable") (hasKey $pdb "maxUnavailable") }}
{{- fail (printf "\n%s.podDisruptionBudget: set minAvailable or maxUnavailable, not both." $name) }}
{{- end }}
{{- end }}
{{- if le (int (include "leadhook.server.terminationGracePeriodSeconds" .)) (add $s.preStopSleepSeconds $s.shutdownTimeoutSeconds | int) }}
{{- fail (printf "\nwebhookServer.terminationGracePeriodSeconds (%v) must be longer than preStopSleepSeconds + shutdownTimeoutSeconds (%d), or in-flight leads are killed mid-write." $s.terminationGracePeriodSeconds (add $s.preStopSleepSeconds $s.shutdownTimeoutSeconds)) }}
{{- end }}
{{- if and $s.tls.enabled (not $s.tls.secretName) }}
{{- fail "\nwebhookServer.tls.enabled needs webhookServer.tls.secretName: a kubernetes.io/tls Secret (e.g. a cert-manager Certificate's)." }}
{{- end }}
{{- if and $s.ingress.enabled (not $s.ingress.hosts) }}
{{- fail "\nwebhookServer.ingress.enabled needs at least one entry in webhookServer.ingress.hosts." }}
{{- end }}
{{- if and $s.spool.enabled $s.spool.volume.persistentVolumeClaim (or $s.autoscaling.enabled (gt (int (include "leadhook.server.replicas" .)) 1)) }}
{{- fail "\nwebhookServer.spool.volume.persistentVolumeClaim is one claim for every pod, but each webhook-server replica needs a spool of its own: use it with a single replica, or use an ephemeral volumeClaimTemplate (a disk per pod)." }}
{{- end }}
{{- if include "leadhook.server.persistentSpool" . }}
{{- if $s.spool.volume }}
{{- fail "\nwebhookServer.spool.persistence.enabled gives each pod a claim of its own for the spool: leave webhookServer.spool.volume empty." }}
{{- end }}
{{- if gt (float64 $s.spool.maxBytes) (include "leadhook.quantityBytes" $s.spool.persistence.size | float64) }}
{{- fail (printf "\nwebhookServer.spool.maxBytes (%d) must not exceed webhookServer.spool.persistence.size (%s): a spool that fills its disk refuses leads before its limit." ($s.spool.maxBytes | int64) $s.spool.persistence.size) }}
{{- end }}
{{- else if and $s.spool.enabled (not $s.spool.volume) (not .Values.embeddedStore.enabled) }}
{{- if gt (float64 $s.spool.maxBytes) (include "leadhook.quantityBytes" $s.spool.sizeLimit | float64) }}
{{- fail (printf "\nwebhookServer.spool.maxBytes (%d) must not exceed webhookServer.spool.sizeLimit (%s): an emptyDir over its sizeLimit gets the pod evicted, and the spooled leads with it." ($s.spool.maxBytes | int64) $s.spool.sizeLimit) }}
{{- end }}
{{- end }}
{{- $sm := .Values.prometheus.serviceMonitor }}
{{- if $sm.enabled }}
{{- if not .Values.metrics.enabled }}
{{- fail "\nprometheus.serviceMonitor.enabled needs metrics.enabled=true: there is nothing to scrape." }}
{{- end }}
{{- if gt (include "leadhook.durationSeconds" $sm.scrapeTimeout | float64) (include "leadhook.durationSeconds" $sm.interval | float64) }}
{{- fail (printf "\nprometheus.serviceMonitor.scrapeTimeout (%s) must not be longer than its interval (%s)." $sm.scrapeTimeout $sm.interval) }}
{{- end }}
{{- end }}
{{- if $s.watchNamespaces }}
{{- range .Values.integrations }}
{{- $ns := default $.Release.Namespace .namespace }}
{{- if not (has $ns $s.watchNamespaces) }}
{{- fail (printf "\nintegration %s is in namespace %s, which webhookServer.watchNamespaces (%s) leaves out: the server would never serve it." .name $ns (join "," $s.watchNamespaces)) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
