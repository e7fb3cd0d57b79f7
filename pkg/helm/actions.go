package helm

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"sigs.k8s.io/kustomize/kyaml/kio"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	helmv1 "github.com/helmflux/helmflux/api/helm/v1"
)

// Request is an install or upgrade of one release.
type Request struct {
	Namespace string
	Name      string
	Chart     *chart.Chart
	// Values are the merged user values; Helm adds the chart's defaults.
	Values map[string]any
	// Labels are stored on the release record (digests, at most 63 characters each).
	Labels map[string]string
	// Antecedent is written as the helm.fluxcd.io/antecedent annotation on
	// every rendered object.
	Antecedent string
	Timeout    time.Duration
	Wait       bool
	// Validate asks the API server to refuse unknown fields.
	Validate bool
	SkipCRDs bool
	// Upgrade only:
	MaxHistory  int
	ResetValues bool
	ReuseValues bool
	Force       bool
	// Install only: take over the name of a failed or uninstalled release.
	Replace bool
}

// Install installs a release. Cancelling ctx ends it failed.
func (r *Runner) Install(ctx context.Context, req Request) (_ *Release, err error) {
	start := time.Now()
	defer func() { r.observed(ActionInstall, start, err) }()
	cfg, err := r.configuration(req.Namespace, req.Validate)
	if err != nil {
		return nil, err
	}
	in := action.NewInstall(cfg)
	in.ReleaseName = req.Name
	in.Namespace = req.Namespace
	in.Timeout = req.Timeout
	in.Wait = req.Wait
	in.WaitForJobs = req.Wait
	in.SkipCRDs = req.SkipCRDs
	in.Replace = req.Replace
	in.Labels = req.Labels
	// Validation happens on the API server (see strictValidation).
	in.DisableOpenAPIValidation = true
	in.PostRenderer = antecedent(req.Antecedent)
	rel, err := in.RunWithContext(ctx, req.Chart, req.Values)
	if hasCRDs(req.Chart) && !req.SkipCRDs {
		r.Invalidate()
	}
	if err != nil {
		return summarize(rel), fmt.Errorf("install %s/%s: %w", req.Namespace, req.Name, err)
	}
	return summarize(rel), nil
}

// Upgrade upgrades a release that has a deployed revision. Cancelling ctx
// ends it failed.
func (r *Runner) Upgrade(ctx context.Context, req Request) (_ *Release, err error) {
	start := time.Now()
	defer func() { r.observed(ActionUpgrade, start, err) }()
	cfg, err := r.configuration(req.Namespace, req.Validate)
	if err != nil {
		return nil, err
	}
	up := action.NewUpgrade(cfg)
	up.Namespace = req.Namespace
	up.Timeout = req.Timeout
	up.Wait = req.Wait
	up.WaitForJobs = req.Wait
	up.SkipCRDs = req.SkipCRDs
	up.MaxHistory = req.MaxHistory
	up.ResetValues = req.ResetValues
	up.ReuseValues = req.ReuseValues
	up.Force = req.Force
	up.Labels = req.Labels
	up.DisableOpenAPIValidation = true
	up.PostRenderer = antecedent(req.Antecedent)
	rel, err := up.RunWithContext(ctx, req.Name, req.Chart, req.Values)
	if err != nil {
		return summarize(rel), fmt.Errorf("upgrade %s/%s: %w", req.Namespace, req.Name, err)
	}
	return summarize(rel), nil
}

// RollbackOptions configure a rollback.
type RollbackOptions struct {
	// Version is the revision to return to.
	Version      int
	Timeout      time.Duration
	Wait         bool
	Force        bool
	Recreate     bool
	DisableHooks bool
	MaxHistory   int
}

// Rollback returns a release to an earlier revision. Helm's rollback takes no
// context; it ends within opts.Timeout.
func (r *Runner) Rollback(_ context.Context, namespace, name string, opts RollbackOptions) (err error) {
	start := time.Now()
	defer func() { r.observed(ActionRollback, start, err) }()
	cfg, err := r.configuration(namespace, false)
	if err != nil {
		return err
	}
	rb := action.NewRollback(cfg)
	rb.Version = opts.Version
	rb.Timeout = opts.Timeout
	rb.Wait = opts.Wait
	rb.WaitForJobs = opts.Wait
	rb.Force = opts.Force
	rb.Recreate = opts.Recreate
	rb.DisableHooks = opts.DisableHooks
	rb.MaxHistory = opts.MaxHistory
	if err := rb.Run(name); err != nil {
		return fmt.Errorf("roll back %s/%s to revision %d: %w", namespace, name, opts.Version, err)
	}
	return nil
}

// Test runs the release's test hooks. The returned release names the tests
// that failed; err is set when any failed or they could not run.
func (r *Runner) Test(_ context.Context, namespace, name string, timeout time.Duration) (_ *Release, err error) {
	start := time.Now()
	defer func() { r.observed(ActionTest, start, err) }()
	cfg, err := r.configuration(namespace, false)
	if err != nil {
		return nil, err
	}
	t := action.NewReleaseTesting(cfg)
	t.Namespace = namespace
	t.Timeout = timeout
	rel, err := t.Run(name)
	if err != nil {
		return summarize(rel), fmt.Errorf("test %s/%s: %w", namespace, name, err)
	}
	return summarize(rel), nil
}

// Uninstall removes a release and its history. A release that is already
// gone is not an error.
func (r *Runner) Uninstall(_ context.Context, namespace, name string, timeout time.Duration, wait bool) (err error) {
	start := time.Now()
	defer func() { r.observed(ActionUninstall, start, err) }()
	cfg, err := r.configuration(namespace, false)
	if err != nil {
		return err
	}
	u := action.NewUninstall(cfg)
	u.Timeout = timeout
	u.Wait = wait
	u.IgnoreNotFound = true
	if _, err := u.Run(name); err != nil {
		return fmt.Errorf("uninstall %s/%s: %w", namespace, name, err)
	}
	return nil
}

func hasCRDs(ch *chart.Chart) bool {
	if ch == nil {
		return false
	}
	if len(ch.CRDObjects()) > 0 {
		return true
	}
	return false
}

// antecedent is a post-renderer that marks every rendered object with the
// HelmRelease that owns the release. An empty owner renders unchanged.
type antecedent string

func (a antecedent) Run(in *bytes.Buffer) (*bytes.Buffer, error) {
	if a == "" {
		return in, nil
	}
	nodes, err := kio.FromBytes(in.Bytes())
	if err != nil {
		return nil, fmt.Errorf("parse the rendered manifests: %w", err)
	}
	for _, n := range nodes {
		if err := n.PipeE(yaml.SetAnnotation(helmv1.AntecedentAnnotation, string(a))); err != nil {
			return nil, fmt.Errorf("annotate %s/%s: %w", n.GetKind(), n.GetName(), err)
		}
	}
	out, err := kio.StringAll(nodes)
	if err != nil {
		return nil, fmt.Errorf("write the rendered manifests: %w", err)
	}
	return bytes.NewBufferString(out), nil
}
