{{/*
Names, labels and the pod template shared by every role.

Every role's file (api.yaml, smpp.yaml, email.yaml, connector.yaml,
worker.yaml) calls "smsgw.deployment" with a dict:
  root        the chart's top-level context ($)
  role        api | smpp | email | connector | worker (the binary's first argument)
  name        the suffix of the Deployment's name (the role, or connector-<group>)
  group       connector group name, or "" (adds a selector label)
  connectors  list of connector ids for SMSGW_CONNECTORS, or empty (bind all)
  v           the role's values (for a connector group: role values merged with the group's)
  ports       list of dicts {name, port}: the container ports besides metrics
  addrs       list of dicts {name, value}: the role's listen-address variables
  noMetrics   true for a process without the metrics listener (the codec server)
  probePort   the port the default probes use; default metrics
*/}}

{{- define "smsgw.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "smsgw.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The name of one of the release's objects: <fullname>-<suffix>. Takes (dict "root" $ "name" suffix). */}}
{{- define "smsgw.componentName" -}}
{{- printf "%s-%s" (include "smsgw.fullname" .root) .name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "smsgw.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "smsgw.selectorLabels" -}}
app.kubernetes.io/name: {{ include "smsgw.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "smsgw.labels" -}}
helm.sh/chart: {{ include "smsgw.chart" . }}
{{ include "smsgw.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: smsgw
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Selector of one Deployment's pods. Takes (dict "root" $ "role" r "group" g). */}}
{{- define "smsgw.workloadSelector" -}}
{{ include "smsgw.selectorLabels" .root }}
app.kubernetes.io/component: {{ .role }}
{{- if .group }}
smsgw.io/connector-group: {{ .group }}
{{- end }}
{{- end -}}

{{/* Selector of every pod of a role, whatever its group. Takes (dict "root" $ "role" r). */}}
{{- define "smsgw.roleSelector" -}}
{{ include "smsgw.selectorLabels" .root }}
app.kubernetes.io/component: {{ .role }}
{{- end -}}

{{/* Labels of an object that belongs to one role. Takes (dict "root" $ "role" r "group" g). */}}
{{- define "smsgw.roleLabels" -}}
{{ include "smsgw.labels" .root }}
app.kubernetes.io/component: {{ .role }}
{{- if .group }}
smsgw.io/connector-group: {{ .group }}
{{- end }}
{{- end -}}

{{- define "smsgw.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{- define "smsgw.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "smsgw.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The Secret every role reads its environment from. */}}
{{- define "smsgw.secretName" -}}
{{- default (include "smsgw.fullname" .) .Values.secrets.existingSecret -}}
{{- end -}}

{{/* The body of config.yaml. */}}
{{- define "smsgw.configYAML" -}}
{{- if .Values.configFile -}}
{{- .Values.configFile -}}
{{- else -}}
{{- toYaml .Values.config -}}
{{- end -}}
{{- end -}}

{{/* The PriorityClass of a role: its own, else the chart's when the role is listed. Takes (dict "root" $ "role" r "v" values). */}}
{{- define "smsgw.priorityClassName" -}}
{{- if .v.priorityClassName -}}
{{- .v.priorityClassName -}}
{{- else if and .root.Values.priorityClass.create (has .role .root.Values.priorityClass.roles) -}}
{{- .root.Values.priorityClass.name -}}
{{- end -}}
{{- end -}}

{{/*
Probes: the chart-wide defaults overridden key by key by the role's.
A role's probe with `enabled: false` is left out; a role's probe that names
its own handler (httpGet, tcpSocket, grpc, exec) replaces the default's.
Takes (dict "root" $ "v" values).
*/}}
{{- define "smsgw.probes" -}}
{{- $own := .v.probes | default dict -}}
{{- range $kind := list "startup" "liveness" "readiness" }}
{{- $base := deepCopy (get $.root.Values.probes $kind | default dict) -}}
{{- if and $.probePort (hasKey $base "httpGet") }}
{{- $_ := set $base "httpGet" (merge (dict "port" $.probePort) (omit $base.httpGet "port")) }}
{{- end -}}
{{- $over := get $own $kind | default dict -}}
{{- if ne (toString (get $over "enabled")) "false" }}
{{- if or (hasKey $over "httpGet") (hasKey $over "tcpSocket") (hasKey $over "grpc") (hasKey $over "exec") }}
{{- $base = omit $base "httpGet" "tcpSocket" "grpc" "exec" }}
{{- end }}
{{- $probe := mergeOverwrite $base (omit $over "enabled") }}
{{- if $probe }}
{{ $kind }}Probe:
  {{- toYaml $probe | nindent 2 }}
{{- end }}
{{- end }}
{{- end }}
{{- end -}}

{{/* The Secret of the payload keys, or "" when there are none. */}}
{{- define "smsgw.payloadKeysSecret" -}}
{{- if .Values.payloadKeys.existingSecret -}}
{{ .Values.payloadKeys.existingSecret }}
{{- else if .Values.payloadKeys.keys -}}
{{ include "smsgw.componentName" (dict "root" . "name" "payload-keys") }}
{{- end -}}
{{- end -}}

{{/* Environment of every role and of the migration Job. Takes (dict "root" $ "v" values "addrs" list "connectors" list). */}}
{{- define "smsgw.env" -}}
{{- $root := .root -}}
- name: SMSGW_CONFIG
  value: /etc/smsgw/config/config.yaml
- name: SMSGW_TEMPORAL_ADDRESS
  value: {{ $root.Values.temporal.address | quote }}
- name: SMSGW_TEMPORAL_NAMESPACE
  value: {{ $root.Values.temporal.namespace | quote }}
{{- if $root.Values.temporal.tls.secretName }}
- name: SMSGW_TEMPORAL_TLS_CERT
  value: /etc/smsgw/tls/temporal/tls.crt
- name: SMSGW_TEMPORAL_TLS_KEY
  value: /etc/smsgw/tls/temporal/tls.key
{{- if $root.Values.temporal.tls.caKey }}
- name: SMSGW_TEMPORAL_TLS_CA
  value: /etc/smsgw/tls/temporal/{{ $root.Values.temporal.tls.caKey }}
{{- end }}
{{- end }}
- name: SMSGW_MONGODB_DATABASE
  value: {{ $root.Values.mongodb.database | quote }}
{{- with $root.Values.mysql.tlsCAFile }}
- name: SMSGW_MYSQL_TLS_CA
  value: {{ . | quote }}
{{- end }}
- name: SMSGW_LOG_LEVEL
  value: {{ $root.Values.logLevel | quote }}
- name: SMSGW_METRICS_ADDR
  value: ":9102"
{{- /* The migration Job (no .role) seals nothing and runs before a chart-managed key Secret exists. */}}
{{- if and .role (include "smsgw.payloadKeysSecret" $root) }}
- name: SMSGW_PAYLOAD_KEYS_DIR
  value: /etc/smsgw/payload-keys
{{- with $root.Values.payloadKeys.active }}
- name: SMSGW_PAYLOAD_KEY_ACTIVE
  value: {{ . | quote }}
{{- end }}
{{- end }}
{{- range .addrs }}
- name: {{ .name }}
  value: {{ .value | quote }}
{{- end }}
{{- with .connectors }}
- name: SMSGW_CONNECTORS
  value: {{ join "," . | quote }}
{{- end }}
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: POD_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
{{- with $root.Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- with .v.env }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Volumes of a pod. Takes (dict "root" $ "role" r "configMap" name). */}}
{{- define "smsgw.volumes" -}}
{{- $root := .root -}}
- name: config
  configMap:
    name: {{ .configMap }}
- name: tmp
  emptyDir:
    sizeLimit: 64Mi
{{- if $root.Values.temporal.tls.secretName }}
- name: temporal-tls
  secret:
    secretName: {{ $root.Values.temporal.tls.secretName }}
    defaultMode: 0440
{{- end }}
{{- if and (eq .role "smpp") $root.Values.smpp.tls.secretName }}
- name: smpp-tls
  secret:
    secretName: {{ $root.Values.smpp.tls.secretName }}
    defaultMode: 0440
{{- end }}
{{- if and (eq .role "email") (($root.Values.email.tls | default dict).secretName) }}
- name: smtp-tls
  secret:
    secretName: {{ $root.Values.email.tls.secretName }}
    defaultMode: 0440
{{- end }}
{{- if $root.Values.caBundle.configMapName }}
- name: ca-bundle
  configMap:
    name: {{ $root.Values.caBundle.configMapName }}
{{- end }}
{{- if and (ne .role "migrate") (include "smsgw.payloadKeysSecret" $root) }}
- name: payload-keys
  secret:
    secretName: {{ include "smsgw.payloadKeysSecret" $root }}
    defaultMode: 0440
{{- end }}
{{- with $root.Values.extraVolumes }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Volume mounts matching "smsgw.volumes". Takes (dict "root" $ "role" r). */}}
{{- define "smsgw.volumeMounts" -}}
{{- $root := .root -}}
- name: config
  mountPath: /etc/smsgw/config
  readOnly: true
- name: tmp
  mountPath: /tmp
{{- if $root.Values.temporal.tls.secretName }}
- name: temporal-tls
  mountPath: /etc/smsgw/tls/temporal
  readOnly: true
{{- end }}
{{- if and (eq .role "smpp") $root.Values.smpp.tls.secretName }}
- name: smpp-tls
  mountPath: /etc/smsgw/tls/smpp
  readOnly: true
{{- end }}
{{- if and (eq .role "email") (($root.Values.email.tls | default dict).secretName) }}
- name: smtp-tls
  mountPath: /etc/smsgw/tls/smtp
  readOnly: true
{{- end }}
{{- if $root.Values.caBundle.configMapName }}
- name: ca-bundle
  mountPath: /etc/smsgw/ca
  readOnly: true
{{- end }}
{{- if and (ne .role "migrate") (include "smsgw.payloadKeysSecret" $root) }}
- name: payload-keys
  mountPath: /etc/smsgw/payload-keys
  readOnly: true
{{- end }}
{{- with $root.Values.extraVolumeMounts }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Where the role's pods may run, and how they spread. Takes the same dict as "smsgw.deployment". */}}
{{- define "smsgw.placement" -}}
{{- $v := .v -}}
{{- with $v.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- if $v.topologySpreadConstraints }}
topologySpreadConstraints:
  {{- toYaml $v.topologySpreadConstraints | nindent 2 }}
{{- else if .root.Values.topologySpread.enabled }}
topologySpreadConstraints:
{{- range $key := list "topology.kubernetes.io/zone" "kubernetes.io/hostname" }}
  - maxSkew: 1
    topologyKey: {{ $key }}
    whenUnsatisfiable: ScheduleAnyway
    labelSelector:
      matchLabels:
        {{- include "smsgw.workloadSelector" $ | nindent 8 }}
    matchLabelKeys:
      - pod-template-hash
{{- end }}
{{- end }}
{{- end -}}

{{/* A role's Deployment. See the top of this file for the dict it takes. */}}
{{- define "smsgw.deployment" -}}
{{- $root := .root -}}
{{- $v := .v -}}
{{- $priority := include "smsgw.priorityClassName" (dict "root" $root "role" .role "v" $v) -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "smsgw.componentName" (dict "root" $root "name" .name) }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "smsgw.roleLabels" . | nindent 4 }}
spec:
  {{- if not (and $v.autoscaling $v.autoscaling.enabled) }}
  replicas: {{ $v.replicaCount }}
  {{- end }}
  revisionHistoryLimit: 5
  selector:
    matchLabels:
      {{- include "smsgw.workloadSelector" . | nindent 6 }}
  {{- with $v.strategy }}
  strategy:
    {{- /* Values merge over the defaults: Recreate must drop the default rollingUpdate. */}}
    {{- toYaml (ternary (omit . "rollingUpdate") . (eq (toString .type) "Recreate")) | nindent 4 }}
  {{- end }}
  template:
    metadata:
      labels:
        {{- include "smsgw.roleLabels" . | nindent 8 }}
        {{- with $v.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- $annotations := deepCopy ($v.podAnnotations | default dict) }}
      {{- if $root.Values.rolloutOnConfigChange }}
      {{- $_ := set $annotations "checksum/config" (include (print $root.Template.BasePath "/configmap.yaml") $root | sha256sum) }}
      {{- if not $root.Values.secrets.existingSecret }}
      {{- $_ := set $annotations "checksum/secret" (include (print $root.Template.BasePath "/secret.yaml") $root | sha256sum) }}
      {{- end }}
      {{- end }}
      {{- with $annotations }}
      annotations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    spec:
      serviceAccountName: {{ include "smsgw.serviceAccountName" $root }}
      automountServiceAccountToken: {{ $root.Values.serviceAccount.automountServiceAccountToken }}
      # Service links would add SMSGW_*-looking variables for every Service of the release.
      enableServiceLinks: false
      {{- with $root.Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $priority }}
      priorityClassName: {{ . }}
      {{- end }}
      terminationGracePeriodSeconds: {{ $v.terminationGracePeriodSeconds }}
      securityContext:
        {{- toYaml $root.Values.podSecurityContext | nindent 8 }}
      {{- include "smsgw.placement" . | trim | nindent 6 }}
      containers:
        - name: smsgw
          image: {{ include "smsgw.image" $root | quote }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          args:
            - {{ .role }}
            - -config
            - /etc/smsgw/config/config.yaml
            {{- range $v.args }}
            - {{ . | quote }}
            {{- end }}
          ports:
            {{- if not .noMetrics }}
            # /metrics, /healthz and /readyz: for probes and scraping only,
            # never behind a public load balancer.
            - name: metrics
              containerPort: 9102
              protocol: TCP
            {{- end }}
            {{- range .ports }}
            - name: {{ .name }}
              containerPort: {{ .port }}
              protocol: TCP
            {{- end }}
          env:
            {{- include "smsgw.env" . | nindent 12 }}
          envFrom:
            - secretRef:
                name: {{ include "smsgw.secretName" $root }}
            {{- with $root.Values.extraEnvFrom }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          {{- with $v.resources }}
          resources:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          securityContext:
            {{- toYaml $root.Values.securityContext | nindent 12 }}
          {{- include "smsgw.probes" . | trim | nindent 10 }}
          {{- if $v.preStopSleepSeconds }}
          lifecycle:
            # The image has no shell: the kubelet sleeps (Kubernetes 1.30+).
            preStop:
              sleep:
                seconds: {{ $v.preStopSleepSeconds }}
          {{- end }}
          volumeMounts:
            {{- include "smsgw.volumeMounts" . | nindent 12 }}
      volumes:
        {{- include "smsgw.volumes" (dict "root" $root "role" .role "configMap" (include "smsgw.componentName" (dict "root" $root "name" "config"))) | nindent 8 }}
{{- end -}}

{{/* A role's PodDisruptionBudget. Takes the same dict as "smsgw.deployment". */}}
{{- define "smsgw.pdb" -}}
{{- $pdb := .v.pdb | default dict -}}
{{- if $pdb.enabled }}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "smsgw.componentName" (dict "root" .root "name" .name) }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "smsgw.roleLabels" . | nindent 4 }}
spec:
  {{- if hasKey $pdb "minAvailable" }}
  minAvailable: {{ $pdb.minAvailable }}
  {{- else }}
  maxUnavailable: {{ $pdb.maxUnavailable | default 1 }}
  {{- end }}
  # A pod that never became ready may always be evicted, so a crash-looping
  # pod cannot block a node drain.
  unhealthyPodEvictionPolicy: AlwaysAllow
  selector:
    matchLabels:
      {{- include "smsgw.workloadSelector" . | nindent 6 }}
{{- end }}
{{- end -}}

{{/* A role's HorizontalPodAutoscaler. Takes the same dict as "smsgw.deployment". */}}
{{- define "smsgw.hpa" -}}
{{- $a := .v.autoscaling | default dict -}}
{{- if $a.enabled }}
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ include "smsgw.componentName" (dict "root" .root "name" .name) }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "smsgw.roleLabels" . | nindent 4 }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ include "smsgw.componentName" (dict "root" .root "name" .name) }}
  minReplicas: {{ $a.minReplicas }}
  maxReplicas: {{ $a.maxReplicas }}
  metrics:
    {{- if $a.targetCPUUtilizationPercentage }}
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{ $a.targetCPUUtilizationPercentage }}
    {{- end }}
    {{- with $a.metrics }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- with $a.behavior }}
  behavior:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
{{- end -}}
