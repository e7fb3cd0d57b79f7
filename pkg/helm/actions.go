package helm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/release"
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
	// History, when set, is the release's records as the caller just read
	// them (Runner.History) or knows them (NoHistory): Helm's reads of the
	// records during the action are answered from it. It serves one action.
	History *History
}

// Install installs a release. Cancelling ctx ends it failed.
func (r *Runner) Install(ctx context.Context, req Request) (_ *Release, err error) {
	start := time.Now()
	defer func() { r.observed(ActionInstall, start, err) }()
	cfg, g, err := r.acting(ctx, "install", req.Namespace, req.Name, req.Validate, trustChart)
	if err != nil {
		return nil, err
	}
	cfg.Releases.Driver = req.History.driver(req.Namespace, req.Name, cfg.Releases.Driver)
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
	if refusal := g.refused(); refusal != nil {
		return summarize(rel), refusal
	}
	if err != nil {
		return summarize(rel), fmt.Errorf("install %s/%s: %w", req.Namespace, req.Name, err)
	}
	return summarize(rel), nil
}

// Upgrade upgrades a release that has a deployed revision. Cancelling ctx
// ends it failed. Acting as the operator, it deletes no object outside the
// release's namespace that the release did not create, whatever the base
// record lists (ErrRecordRefused).
func (r *Runner) Upgrade(ctx context.Context, req Request) (_ *Release, err error) {
	start := time.Now()
	defer func() { r.observed(ActionUpgrade, start, err) }()
	cfg, g, err := r.acting(ctx, "upgrade", req.Namespace, req.Name, req.Validate, trustChart)
	if err != nil {
		return nil, err
	}
	cfg.Releases.Driver = req.History.driver(req.Namespace, req.Name, cfg.Releases.Driver)
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
	if refusal := g.refused(); refusal != nil {
		return summarize(rel), refusal
	}
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
// context: cancelling ctx returns at once, and what Helm still does ends
// within opts.Timeout, without reaching the cluster (see cancellable). Acting as the operator, everything
// it acts on comes from records: it creates, overwrites or deletes no
// object outside the release's namespace that the release did not create
// (ErrRecordRefused; the rollback's revision is then marked failed).
func (r *Runner) Rollback(ctx context.Context, namespace, name string, opts RollbackOptions) (err error) {
	start := time.Now()
	defer func() { r.observed(ActionRollback, start, err) }()
	cfg, g, err := r.acting(ctx, "roll back", namespace, name, false, trustNothing)
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
	_, err = cancellable(ctx, func() (struct{}, error) { return struct{}{}, rb.Run(name) })
	if ctxErr := ctx.Err(); ctxErr != nil && errors.Is(err, ctxErr) {
		return fmt.Errorf("roll back %s/%s to revision %d: %w", namespace, name, opts.Version, err)
	}
	if refusal := g.refused(); refusal != nil {
		r.settle(cfg, name, StatusPendingRollback, release.StatusFailed, refusal)
		return refusal
	}
	if err != nil {
		return fmt.Errorf("roll back %s/%s to revision %d: %w", namespace, name, opts.Version, err)
	}
	return nil
}

// Test runs the release's test hooks. The returned release names the tests
// that failed; err is set when any failed or they could not run. Cancelling
// ctx returns at once (see cancellable). Acting as
// the operator, a test hook outside the release's namespace is refused
// (ErrRecordRefused): the hooks come from the record.
func (r *Runner) Test(ctx context.Context, namespace, name string, timeout time.Duration) (_ *Release, err error) {
	start := time.Now()
	defer func() { r.observed(ActionTest, start, err) }()
	cfg, g, err := r.acting(ctx, "test", namespace, name, false, trustNothing)
	if err != nil {
		return nil, err
	}
	t := action.NewReleaseTesting(cfg)
	t.Namespace = namespace
	t.Timeout = timeout
	rel, err := cancellable(ctx, func() (*release.Release, error) { return t.Run(name) })
	if ctxErr := ctx.Err(); ctxErr != nil && errors.Is(err, ctxErr) {
		return nil, fmt.Errorf("test %s/%s: %w", namespace, name, err)
	}
	if refusal := g.refused(); refusal != nil {
		return summarize(rel), refusal
	}
	if err != nil {
		return summarize(rel), fmt.Errorf("test %s/%s: %w", namespace, name, err)
	}
	return summarize(rel), nil
}

// Uninstall removes a release and its history. A release that is already
// gone is not an error. Cancelling ctx returns at once (see cancellable).
// Acting as the operator, it deletes (or creates, as
// a delete hook) no object outside the release's namespace that the
// release did not create (ErrRecordRefused; the release is then left as it
// was).
func (r *Runner) Uninstall(ctx context.Context, namespace, name string, timeout time.Duration, wait bool) (err error) {
	start := time.Now()
	defer func() { r.observed(ActionUninstall, start, err) }()
	cfg, g, err := r.acting(ctx, "uninstall", namespace, name, false, trustNothing)
	if err != nil {
		return err
	}
	var before release.Status
	if g != nil {
		if last, err := cfg.Releases.Last(name); err == nil && last.Info != nil {
			before = last.Info.Status
		}
	}
	u := action.NewUninstall(cfg)
	u.Timeout = timeout
	u.Wait = wait
	u.IgnoreNotFound = true
	_, err = cancellable(ctx, func() (*release.UninstallReleaseResponse, error) { return u.Run(name) })
	if ctxErr := ctx.Err(); ctxErr != nil && errors.Is(err, ctxErr) {
		return fmt.Errorf("uninstall %s/%s: %w", namespace, name, err)
	}
	if refusal := g.refused(); refusal != nil {
		if before != "" && before != release.StatusUninstalling {
			r.settle(cfg, name, StatusUninstalling, before, refusal)
		}
		return refusal
	}
	if err != nil {
		return fmt.Errorf("uninstall %s/%s: %w", namespace, name, err)
	}
	return nil
}

// MayRunHooks tells whether an install or upgrade of the chart may run
// hooks, and so wait for their Jobs and Pods even without wait: a template
// of the chart or of its dependencies sets the helm.sh/hook annotation to
// anything but test hooks (which only `helm test` runs), or to a value it
// computes. One that runs none only writes the chart's objects.
func MayRunHooks(ch *chart.Chart) bool {
	if ch == nil {
		return false
	}
	for _, t := range ch.Templates {
		if t != nil && runsHooks(t.Data) {
			return true
		}
	}
	for _, d := range ch.Dependencies() {
		if MayRunHooks(d) {
			return true
		}
	}
	return false
}

// runsHooks tells whether a template sets a hook annotation whose events
// are not all test hooks.
func runsHooks(data []byte) bool {
	if !bytes.Contains(data, []byte(release.HookAnnotation)) {
		return false
	}
	for _, line := range strings.Split(string(data), "\n") {
		key, value, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || strings.Trim(key, `"'`) != release.HookAnnotation {
			continue
		}
		for _, event := range strings.Split(strings.Trim(strings.TrimSpace(value), `"'`), ",") {
			switch release.HookEvent(strings.TrimSpace(event)) {
			case release.HookTest, "test-success":
			default:
				return true
			}
		}
	}
	return false
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

// The refusal of a guarded action is returned as it is, not wrapped: it
// names the action and the release, and Helm may have logged it and
// returned an error of its own instead.

// settle gives the newest record of a refused action, still at the status
// the action gave it (from), the status to (failed, or what it was before),
// so the release is not left locked by an action that did nothing. A
// failure is logged: the refusal is the error to report.
func (r *Runner) settle(cfg *action.Configuration, name, from string, to release.Status, why error) {
	rel, err := cfg.Releases.Last(name)
	if err != nil || rel.Info == nil || string(rel.Info.Status) != from {
		return
	}
	rel.Info.Status = to
	rel.Info.Description = "Refused by helmflux: " + why.Error()
	if err := cfg.Releases.Update(rel); err != nil {
		r.log.Error(err, "Could not settle the record of a refused action", "release", name, "status", to)
	}
}
