{{/*
Names. One installation per cluster: with the documented release name "kube-devops" every
object has the same name as in `kube-devops deploy generate-all`.
*/}}
{{- define "kube-devops.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* The namespace the components run in. */}}
{{- define "kube-devops.namespace" -}}
{{- .Values.namespace.name | default .Release.Namespace -}}
{{- end -}}

{{/* Labels of every object; call with (dict "root" $ "component" "watch"). */}}
{{- define "kube-devops.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
{{ include "kube-devops.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
{{- end -}}

{{/* Labels that select one component's pods (immutable: no version). */}}
{{- define "kube-devops.selectorLabels" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Metadata of a namespaced object; call with (dict "root" $ "component" "watch" "name" "x"). */}}
{{- define "kube-devops.metadata" -}}
name: {{ .name }}
namespace: {{ include "kube-devops.namespace" .root }}
labels:
  {{- include "kube-devops.labels" . | nindent 2 }}
{{- end -}}

{{- define "kube-devops.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default (printf "v%s" .Chart.AppVersion)) -}}
{{- end -}}

{{- define "kube-devops.serviceAccountName" -}}
{{- include "kube-devops.fullname" . -}}
{{- end -}}

{{- define "kube-devops.webhookService" -}}
{{- printf "%s-webhook" (include "kube-devops.fullname" .) -}}
{{- end -}}

{{- define "kube-devops.webhookSecret" -}}
{{- printf "%s-webhook-tls" (include "kube-devops.fullname" .) -}}
{{- end -}}

{{/*
A component's Deployment; call with (dict "root" $ "component" "watch" "port" 8080
"portName" "http" "scheme" "HTTP" "args" (list "watch") "tls" false), and optionally
"replicas" and "serviceAccount" (default replicaCount and the components' account).
*/}}
{{- define "kube-devops.deployment" -}}
{{- $root := .root -}}
{{- if (index $root.Values .component).enabled }}
{{- $name := printf "%s-%s" (include "kube-devops.fullname" $root) .component }}
apiVersion: apps/v1
kind: Deployment
metadata:
  {{- include "kube-devops.metadata" (dict "root" $root "component" .component "name" $name) | nindent 2 }}
spec:
  replicas: {{ .replicas | default $root.Values.replicaCount }}
  selector:
    matchLabels:
      {{- include "kube-devops.selectorLabels" . | nindent 6 }}
  # One new replica at a time, an old one stopped only once a new one is ready.
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxSurge: 1
      maxUnavailable: 0
  template:
    metadata:
      annotations:
        kubectl.kubernetes.io/default-container: {{ .component }}
      labels:
        {{- include "kube-devops.labels" . | nindent 8 }}
    spec:
      serviceAccountName: {{ .serviceAccount | default (include "kube-devops.serviceAccountName" $root) }}
      automountServiceAccountToken: true
      {{- with $root.Values.image.pullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      securityContext:
        runAsNonRoot: true
        {{- if include "kube-devops.pinIds" $root }}
        runAsUser: 1000
        runAsGroup: 1000
        fsGroup: 1000
        {{- end }}
        seccompProfile:
          type: RuntimeDefault
      terminationGracePeriodSeconds: 30
      topologySpreadConstraints:
        - maxSkew: 1
          topologyKey: kubernetes.io/hostname
          whenUnsatisfiable: ScheduleAnyway
          labelSelector:
            matchLabels:
              {{- include "kube-devops.selectorLabels" . | nindent 14 }}
          matchLabelKeys:
            - pod-template-hash
      {{- with $root.Values.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $root.Values.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      containers:
        - name: {{ .component }}
          image: {{ include "kube-devops.image" $root }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          args:
            {{- toYaml .args | nindent 12 }}
          ports:
            - name: {{ .portName }}
              containerPort: {{ .port }}
              protocol: TCP
          env:
            - name: POD_NAME
              valueFrom:
                fieldRef:
                  fieldPath: metadata.name
            - name: POD_NAMESPACE
              valueFrom:
                fieldRef:
                  fieldPath: metadata.namespace
            - name: POD_IP
              valueFrom:
                fieldRef:
                  fieldPath: status.podIP
            {{- with $root.Values.tracing.otlpEndpoint }}
            - name: OTEL_EXPORTER_OTLP_ENDPOINT
              value: {{ . | quote }}
            {{- end }}
          resources:
            {{- toYaml $root.Values.resources | nindent 12 }}
          livenessProbe:
            httpGet:
              path: /healthz
              port: {{ .portName }}
              scheme: {{ .scheme }}
            initialDelaySeconds: 5
            periodSeconds: 10
            timeoutSeconds: 1
            failureThreshold: 3
          readinessProbe:
            httpGet:
              path: /readyz
              port: {{ .portName }}
              scheme: {{ .scheme }}
            initialDelaySeconds: 3
            periodSeconds: 5
            timeoutSeconds: 1
            failureThreshold: 3
          securityContext:
            runAsNonRoot: true
            {{- if include "kube-devops.pinIds" $root }}
            runAsUser: 1000
            runAsGroup: 1000
            {{- end }}
            readOnlyRootFilesystem: true
            allowPrivilegeEscalation: false
            privileged: false
            capabilities:
              drop:
                - ALL
            seccompProfile:
              type: RuntimeDefault
          terminationMessagePolicy: FallbackToLogsOnError
          volumeMounts:
            - name: tmp
              mountPath: /tmp
              readOnly: false
            {{- if .tls }}
            - name: tls
              mountPath: /tls
              readOnly: true
            {{- end }}
      volumes:
        - name: tmp
          emptyDir:
            sizeLimit: 64Mi
        {{- if .tls }}
        - name: tls
          secret:
            secretName: {{ include "kube-devops.webhookSecret" $root }}
            {{- if include "kube-devops.pinIds" $root }}
            defaultMode: 288 # 0440: group-readable, the pod's fsGroup is the container's GID
            {{- else }}
            defaultMode: 292 # 0444: the platform assigns the user, so any user of the pod may read
            {{- end }}
        {{- end }}
{{- end }}
{{- end -}}

{{/* A component's PodDisruptionBudget, only when it has more replicas than minAvailable. */}}
{{- define "kube-devops.pdb" -}}
{{- $root := .root -}}
{{- if and (index $root.Values .component).enabled $root.Values.pdb.enabled (gt (int $root.Values.replicaCount) (int $root.Values.pdb.minAvailable)) }}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  {{- include "kube-devops.metadata" (dict "root" $root "component" .component "name" (printf "%s-%s" (include "kube-devops.fullname" $root) .component)) | nindent 2 }}
spec:
  minAvailable: {{ $root.Values.pdb.minAvailable }}
  unhealthyPodEvictionPolicy: AlwaysAllow
  selector:
    matchLabels:
      {{- include "kube-devops.selectorLabels" . | nindent 6 }}
{{- end }}
{{- end -}}

{{/* A component's NetworkPolicy: in only on its serving port, out only to the API server and
DNS; call with (dict "root" $ "component" "watch" "port" 8080). */}}
{{- define "kube-devops.networkPolicy" -}}
{{- $root := .root -}}
{{- if and (index $root.Values .component).enabled $root.Values.networkPolicy.enabled }}
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  {{- include "kube-devops.metadata" (dict "root" $root "component" .component "name" (printf "%s-%s" (include "kube-devops.fullname" $root) .component)) | nindent 2 }}
spec:
  podSelector:
    matchLabels:
      {{- include "kube-devops.selectorLabels" . | nindent 6 }}
  policyTypes: [Ingress, Egress]
  ingress:
    - ports:
        - port: {{ .port }}
          protocol: TCP
  egress:
    - to:
        {{- range $root.Values.networkPolicy.apiServerCIDRs }}
        - ipBlock:
            cidr: {{ . }}
        {{- end }}
      ports:
        {{- range $root.Values.networkPolicy.apiServerPorts }}
        - port: {{ . }}
          protocol: TCP
        {{- end }}
    - ports:
        - {port: 53, protocol: UDP}
        - {port: 53, protocol: TCP}
        - {port: 5353, protocol: UDP}
        - {port: 5353, protocol: TCP}
    {{- with $root.Values.tracing.otlpEndpoint }}
    {{- $url := urlParse . }}
    {{- $port := ternary "443" "80" (eq $url.scheme "https") }}
    {{- if regexMatch ":[0-9]+$" $url.host }}{{- $port = regexFind "[0-9]+$" $url.host }}{{- end }}
    - ports:
        - {port: {{ $port }}, protocol: TCP}
    {{- end }}
{{- end }}
{{- end -}}

{{/* A component's Service; call with (dict "root" $ "component" "watch" "port" 8080 "portName" "metrics" "targetPort" "http"). */}}
{{- define "kube-devops.service" -}}
{{- $root := .root -}}
{{- if (index $root.Values .component).enabled }}
apiVersion: v1
kind: Service
metadata:
  {{- include "kube-devops.metadata" (dict "root" $root "component" .component "name" (printf "%s-%s" (include "kube-devops.fullname" $root) .component)) | nindent 2 }}
spec:
  type: ClusterIP
  selector:
    {{- include "kube-devops.selectorLabels" . | nindent 4 }}
  ports:
    - name: {{ .portName }}
      port: {{ .port }}
      targetPort: {{ .targetPort }}
      protocol: TCP
{{- end }}
{{- end -}}

{{/*
Non-empty when ServiceMonitors are rendered: serviceMonitor.enabled true, or auto and the
cluster serves monitoring.coreos.com/v1 (what `helm install` discovers; `helm template` knows
it only from --api-versions).
*/}}
{{- define "kube-devops.serviceMonitors" -}}
{{- $enabled := toString .Values.serviceMonitor.enabled -}}
{{- $served := or (.Capabilities.APIVersions.Has "monitoring.coreos.com/v1") (.Capabilities.APIVersions.Has "monitoring.coreos.com/v1/ServiceMonitor") -}}
{{- if or (eq $enabled "true") (and (eq $enabled "auto") $served) -}}
true
{{- end -}}
{{- end }}

{{/*
Non-empty when the pods run as UID/GID 1000: pinIds true, or auto and the cluster does not
serve security.openshift.io/v1 (OpenShift assigns each namespace's IDs and refuses others).
*/}}
{{- define "kube-devops.pinIds" -}}
{{- $pin := toString .Values.pinIds -}}
{{- $openshift := or (.Capabilities.APIVersions.Has "security.openshift.io/v1") (.Capabilities.APIVersions.Has "security.openshift.io/v1/SecurityContextConstraints") -}}
{{- if or (eq $pin "true") (and (eq $pin "auto") (not $openshift)) -}}
true
{{- end -}}
{{- end }}

{{/* A component's ServiceMonitor; call with (dict "root" $ "component" "watch" "port" "metrics" "scheme" "http"). */}}
{{- define "kube-devops.serviceMonitor" -}}
{{- $root := .root -}}
{{- if and (index $root.Values .component).enabled (include "kube-devops.serviceMonitors" $root) }}
{{- $name := printf "%s-%s" (include "kube-devops.fullname" $root) .component }}
{{- $ns := include "kube-devops.namespace" $root }}
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: {{ $name }}
  namespace: {{ $ns }}
  labels:
    {{- include "kube-devops.labels" . | nindent 4 }}
    {{- with $root.Values.serviceMonitor.labels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  selector:
    matchLabels:
      {{- include "kube-devops.selectorLabels" . | nindent 6 }}
  namespaceSelector:
    matchNames:
      - {{ $ns }}
  endpoints:
    - port: {{ .port }}
      path: /metrics
      scheme: {{ .scheme }}
      interval: {{ $root.Values.serviceMonitor.interval }}
      {{- /* The metrics' own namespace label (the workload's) wins over the target's. */}}
      honorLabels: true
      {{- if eq .scheme "https" }}
      tlsConfig:
        ca:
          secret:
            name: {{ include "kube-devops.webhookSecret" $root }}
            key: ca.crt
        serverName: {{ printf "%s.%s.svc" $name $ns }}
      {{- end }}
{{- end }}
{{- end -}}
