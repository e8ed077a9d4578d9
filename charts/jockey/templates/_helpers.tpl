{{/* The name of the webhook's objects (install's --name). */}}
{{- define "jockey.fullname" -}}
{{- .Values.fullnameOverride | default "jockey-webhook" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The bookkeeping labels of a Helm release (left out when the chart is diffed against
manifests/ and install, which carry their own). */}}
{{- define "jockey.releaseLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end -}}

{{/* Labels of the webhook's objects: those kustomize's `labels:` gives manifests/base. */}}
{{- define "jockey.labels" -}}
app.kubernetes.io/name: {{ include "jockey.fullname" . }}
app.kubernetes.io/part-of: jockey
{{ include "jockey.releaseLabels" . }}
{{- end -}}

{{/* Labels of the broker's objects (manifests/broker: part-of only). */}}
{{- define "jockey.brokerLabels" -}}
app.kubernetes.io/part-of: jockey
{{ include "jockey.releaseLabels" . }}
{{- end -}}

{{/* Labels of the certificate Secrets (as install labels them). */}}
{{- define "jockey.secretLabels" -}}
app.kubernetes.io/part-of: jockey
{{ include "jockey.releaseLabels" . }}
{{- end -}}

{{- define "jockey.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{/* The webhook's namespaceSelector: the chart's value, or every namespace but kube-system and
the release's (jockey_core::registration's default). */}}
{{- define "jockey.namespaceSelector" -}}
{{- if .Values.namespaceSelector -}}
{{- toYaml .Values.namespaceSelector -}}
{{- else -}}
matchExpressions:
- key: kubernetes.io/metadata.name
  operator: NotIn
  values:
  - kube-system
  - {{ .Release.Namespace }}
{{- end -}}
{{- end -}}

{{/* A CEL string literal (jockey_core::registration::cel_string). */}}
{{- define "jockey.celString" -}}
'{{ . | replace "\\" "\\\\" | replace "'" "\\'" | replace "\n" "\\n" }}'
{{- end -}}

{{/* The namespaceSelector as a CEL condition on variables.nsLabels
(jockey_core::registration::selector_cel): the admission policy's "namespaces the webhooks
answer". */}}
{{- define "jockey.selectorCel" -}}
{{- $sel := include "jockey.namespaceSelector" . | fromYaml -}}
{{- $l := "variables.nsLabels" -}}
{{- $terms := list -}}
{{- range $k, $v := ($sel.matchLabels | default dict) -}}
{{- $ks := include "jockey.celString" $k -}}
{{- $terms = append $terms (printf "(%s in %s && %s[%s] == %s)" $ks $l $l $ks (include "jockey.celString" (toString $v))) -}}
{{- end -}}
{{- range $e := ($sel.matchExpressions | default list) -}}
{{- $k := include "jockey.celString" $e.key -}}
{{- $vals := list -}}
{{- range $v := ($e.values | default list) -}}
{{- $vals = append $vals (include "jockey.celString" (toString $v)) -}}
{{- end -}}
{{- $list := printf "[%s]" (join ", " $vals) -}}
{{- if eq $e.operator "In" -}}
{{- $terms = append $terms (printf "(%s in %s && %s[%s] in %s)" $k $l $l $k $list) -}}
{{- else if eq $e.operator "NotIn" -}}
{{- $terms = append $terms (printf "(!(%s in %s) || !(%s[%s] in %s))" $k $l $l $k $list) -}}
{{- else if eq $e.operator "Exists" -}}
{{- $terms = append $terms (printf "(%s in %s)" $k $l) -}}
{{- else if eq $e.operator "DoesNotExist" -}}
{{- $terms = append $terms (printf "!(%s in %s)" $k $l) -}}
{{- else -}}
{{- fail (printf "namespaceSelector: matchExpressions operator %q is not one of In, NotIn, Exists, DoesNotExist" $e.operator) -}}
{{- end -}}
{{- end -}}
{{- if $terms -}}{{ join " && " $terms }}{{- else -}}true{{- end -}}
{{- end -}}

{{/* The webhook's settings (manifests/base/config.env). */}}
{{- define "jockey.config" -}}
DEPLOYMENT_DOMAIN: {{ .Values.config.deploymentDomain | quote }}
ALB_SHARED_GROUP_NAME: {{ .Values.config.albSharedGroupName | quote }}
ALB_ALLOWED_GROUPS: {{ .Values.config.albAllowedGroups | quote }}
IMAGE_REPOSITORY_PREFIX: {{ .Values.config.imageRepositoryPrefix | quote }}
IMAGE_REGISTRY: {{ .Values.config.imageRegistry | quote }}
ALB_CERTIFICATE_ARN: {{ .Values.config.albCertificateArn | quote }}
{{- end -}}
