package helmtest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"sigs.k8s.io/yaml"
)

// Chart describes a chart to build in tests.
type Chart struct {
	// Name, Version and AppVersion go to Chart.yaml (apiVersion v2).
	Name, Version, AppVersion string
	// Values is values.yaml's content ("" writes none).
	Values string
	// Templates maps a file name under templates/ to its content.
	Templates map[string]string
	// Files maps other files, relative to the chart root (for example
	// "crds/x.yaml" or "charts/sub/Chart.yaml"), to their content.
	Files map[string]string
	// Dependencies are written to Chart.yaml.
	Dependencies []Dependency
}

// Dependency is one entry of Chart.yaml's dependencies.
type Dependency struct {
	// Name and Version (a range) of the dependency chart.
	Name, Version string
	// Repository is an http(s)://, oci:// or file:// URL, or "" for a
	// chart vendored in charts/.
	Repository string
	// Alias and Condition as Helm defines them.
	Alias, Condition string
}

// Metadata returns the Chart.yaml this chart is written with.
func (c Chart) Metadata() *chart.Metadata {
	md := &chart.Metadata{
		APIVersion:  chart.APIVersionV2,
		Name:        c.Name,
		Version:     c.Version,
		AppVersion:  c.AppVersion,
		Description: "A chart built by helmtest",
		Type:        "application",
	}
	for _, d := range c.Dependencies {
		md.Dependencies = append(md.Dependencies, &chart.Dependency{
			Name: d.Name, Version: d.Version, Repository: d.Repository, Alias: d.Alias, Condition: d.Condition,
		})
	}
	return md
}

// WriteDir writes the unpacked chart into dir (created if missing).
func (c Chart) WriteDir(dir string) error {
	md, err := yaml.Marshal(c.Metadata())
	if err != nil {
		return fmt.Errorf("marshal Chart.yaml: %w", err)
	}
	files := map[string]string{"Chart.yaml": string(md)}
	if c.Values != "" {
		files["values.yaml"] = c.Values
	}
	for n, content := range c.Templates {
		files["templates/"+n] = content
	}
	for n, content := range c.Files {
		files[n] = content
	}
	for n, content := range files {
		if !filepath.IsLocal(filepath.FromSlash(n)) {
			return fmt.Errorf("chart file %q is not a local path", n)
		}
		p := filepath.Join(dir, filepath.FromSlash(n))
		if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			return err
		}
	}
	return nil
}

// Package returns the chart as a .tgz, made the way `helm package` makes it
// (Helm's loader.LoadDir and chartutil.Save).
func (c Chart) Package() ([]byte, error) {
	tmp, err := os.MkdirTemp("", "helmtest-chart-")
	if err != nil {
		return nil, err
	}
	defer func() { _ = os.RemoveAll(tmp) }()
	src := filepath.Join(tmp, "src", c.Name)
	if err := c.WriteDir(src); err != nil {
		return nil, err
	}
	ch, err := loader.LoadDir(src)
	if err != nil {
		return nil, fmt.Errorf("load chart %s: %w", c.Name, err)
	}
	p, err := chartutil.Save(ch, filepath.Join(tmp, "out"))
	if err != nil {
		return nil, fmt.Errorf("package chart %s: %w", c.Name, err)
	}
	return os.ReadFile(p)
}

// Simple returns a chart like podinfo, but tiny: a ConfigMap and a
// Deployment that reads it, with the image from .Values.image.repository and
// .Values.image.tag, replicas from .Values.replicaCount, the usual
// fullname/labels helpers and a config checksum annotation, so upgrades roll
// the pods when values change. Release "r" of chart "app" creates ConfigMap
// and Deployment "r-app".
func Simple(name, version string) Chart {
	r := strings.NewReplacer("NAME", name)
	return Chart{
		Name:       name,
		Version:    version,
		AppVersion: "6.5.0",
		Values: r.Replace(`replicaCount: 1
image:
  repository: ghcr.io/stefanprodan/podinfo
  tag: "6.5.0"
  pullPolicy: IfNotPresent
message: hello from NAME
port: 9898
resources: {}
`),
		Templates: map[string]string{
			"_helpers.tpl":    r.Replace(simpleHelpers),
			"configmap.yaml":  r.Replace(simpleConfigMap),
			"deployment.yaml": r.Replace(simpleDeployment),
			"NOTES.txt":       "{{ .Chart.Name }} {{ .Chart.Version }} is running as {{ .Release.Name }}.\n",
		},
	}
}

const simpleHelpers = `{{- define "NAME.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "NAME.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "NAME.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "NAME.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}
`

const simpleConfigMap = `apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ include "NAME.fullname" . }}
  labels:
    {{- include "NAME.labels" . | nindent 4 }}
data:
  MESSAGE: {{ .Values.message | quote }}
`

const simpleDeployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "NAME.fullname" . }}
  labels:
    {{- include "NAME.labels" . | nindent 4 }}
spec:
  replicas: {{ .Values.replicaCount }}
  selector:
    matchLabels:
      {{- include "NAME.selectorLabels" . | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "NAME.selectorLabels" . | nindent 8 }}
      annotations:
        checksum/config: {{ include (print $.Template.BasePath "/configmap.yaml") . | sha256sum }}
    spec:
      containers:
        - name: {{ .Chart.Name | replace "." "-" | trunc 63 | trimSuffix "-" }}
          image: "{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}"
          imagePullPolicy: {{ .Values.image.pullPolicy }}
          ports:
            - name: http
              containerPort: {{ .Values.port }}
              protocol: TCP
          envFrom:
            - configMapRef:
                name: {{ include "NAME.fullname" . }}
          resources:
            {{- toYaml .Values.resources | nindent 12 }}
`
