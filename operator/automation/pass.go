package automation

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"

	"golang.org/x/sync/errgroup"

	helmfluxv1alpha1 "github.com/helmflux/helmflux/api/helmflux/v1alpha1"
	"github.com/helmflux/helmflux/pkg/apply"
	"github.com/helmflux/helmflux/pkg/policy"
	"github.com/helmflux/helmflux/pkg/registry"
	"github.com/helmflux/helmflux/pkg/update"
)

// scanConcurrency bounds the registry scans of one pass running at once.
const scanConcurrency = 8

// maxReported bounds the updates and failures kept in status.
const maxReported = 50

// plan is what one pass over a checkout decided.
type plan struct {
	// automated counts the automated containers considered.
	automated int
	// repositories are the normalised repositories scanned, for the
	// registry webhook's index.
	repositories []string
	updates      []helmfluxv1alpha1.ImageUpdate
	failures     []helmfluxv1alpha1.ImageFailure
	// files are the new contents of the files the updates change.
	files map[string][]byte
}

// candidate is one automated container and its policy.
type candidate struct {
	img    update.Image
	policy policy.ContainerPolicy
	pull   pullConfig
}

// planner runs one pass: read the checkout, find automated images, scan
// their registries, let the policies decide and rewrite the tags.
type planner struct {
	registry *registry.Client
	creds    *credentials
	paths    []string
}

// plan reads the checkout at dir and decides what to change there.
func (p *planner) plan(ctx context.Context, dir string) (*plan, error) {
	rd, err := newReader(dir)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rd.Close() }()
	out := &plan{}
	files, errs := rd.yamlUnder(p.paths)
	files, verrs := rd.withValuesFiles(files)
	errs = append(errs, verrs...)
	images, ferrs := update.Find(files)
	errs = append(errs, ferrs...)
	for _, err := range errs {
		if errors.Is(err, errTooMuch) {
			return nil, err
		}
		out.fail(helmfluxv1alpha1.ImageFailure{Message: err.Error()})
	}

	out.failures = append(out.failures, strayAnnotations(images)...)
	pulls := pullConfigs(files)
	var cands []candidate
	for _, img := range images {
		pol := policy.FromAnnotations(img.Annotations)
		if !pol.Automated || pol.Locked || pol.Ignored || !p.registry.Allowed(img.Repository) {
			continue
		}
		out.automated++
		cp, err := pol.Container(img.Container)
		if err != nil {
			out.fail(failure(img, err))
			continue
		}
		pc, ok := pulls[img.Object]
		if !ok {
			pc = pullConfig{namespace: namespaceOf(img.Object), serviceAccount: "default"}
		}
		cands = append(cands, candidate{img: img, policy: cp, pull: pc})
	}

	changes, err := p.decide(ctx, cands, out)
	if err != nil {
		return nil, err
	}
	if len(changes) == 0 {
		return out, nil
	}
	newFiles, aerrs := update.Apply(files, changes)
	for _, err := range aerrs {
		out.fail(helmfluxv1alpha1.ImageFailure{Message: err.Error()})
	}
	out.files = newFiles
	// Report only the updates whose file really changed.
	kept := out.updates[:0]
	for _, u := range out.updates {
		if _, ok := newFiles[u.File]; ok {
			kept = append(kept, u)
		}
	}
	out.updates = kept
	return out, nil
}

// decide scans every candidate's repository (in parallel, bounded) and asks
// its policy for a tag. A scan or policy failure leaves that image alone.
func (p *planner) decide(ctx context.Context, cands []candidate, out *plan) ([]update.Change, error) {
	type result struct {
		change *update.Change
		upd    helmfluxv1alpha1.ImageUpdate
		fail   *helmfluxv1alpha1.ImageFailure
		repo   string
	}
	results := make([]result, len(cands))
	var credMu sync.Mutex // credentials caches Secrets per pass
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(scanConcurrency)
	for i, c := range cands {
		g.Go(func() error {
			credMu.Lock()
			creds, credErrs := p.creds.forWorkload(gctx, c.pull)
			credMu.Unlock()
			opts := registry.ScanOptions{Credentials: creds}
			if c.policy.NeedsCreated() {
				opts.Created = c.policy.Filter.Match
			}
			res, err := p.registry.Scan(gctx, c.img.Repository, opts)
			results[i].repo = res.Repository
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				if len(credErrs) > 0 {
					// Say why the login may be missing, not just what the registry answered.
					err = fmt.Errorf("%w (pull secrets: %w)", err, errors.Join(credErrs...))
				}
				f := failure(c.img, fmt.Errorf("scan %s: %w", c.img.Repository, err))
				results[i].fail = &f
				return nil
			}
			d, err := policy.Decide(c.policy, c.img.Tag, toScan(res))
			if err != nil {
				f := failure(c.img, err)
				results[i].fail = &f
				return nil
			}
			if d.Changed {
				results[i].change = &update.Change{Image: c.img, NewTag: d.Tag}
				results[i].upd = helmfluxv1alpha1.ImageUpdate{
					Workload: workloadID(c.img.Object), Container: c.img.Container,
					Image: c.img.Repository, From: c.img.Tag, To: d.Tag, File: c.img.File,
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	var changes []update.Change
	repos := map[string]bool{}
	for _, r := range results {
		if r.repo != "" {
			repos[r.repo] = true
		}
		if r.fail != nil {
			out.fail(*r.fail)
		}
		if r.change != nil {
			changes = append(changes, *r.change)
			out.updates = append(out.updates, r.upd)
		}
	}
	out.repositories = sortedKeys(repos)
	return changes, nil
}

func (p *plan) fail(f helmfluxv1alpha1.ImageFailure) {
	p.failures = append(p.failures, f)
}

// report returns the updates and failures as status keeps them: sorted and
// capped.
func (p *plan) report() ([]helmfluxv1alpha1.ImageUpdate, []helmfluxv1alpha1.ImageFailure) {
	u := append([]helmfluxv1alpha1.ImageUpdate(nil), p.updates...)
	sort.Slice(u, func(i, j int) bool {
		return u[i].Workload+"/"+u[i].Container+"/"+u[i].File < u[j].Workload+"/"+u[j].Container+"/"+u[j].File
	})
	f := append([]helmfluxv1alpha1.ImageFailure(nil), p.failures...)
	sort.SliceStable(f, func(i, j int) bool {
		return f[i].Workload+"/"+f[i].Container < f[j].Workload+"/"+f[j].Container
	})
	return u[:min(len(u), maxReported)], f[:min(len(f), maxReported)]
}

func toScan(res registry.Result) policy.Scan {
	s := policy.Scan{Complete: res.Complete, Tags: make([]policy.Candidate, 0, len(res.Tags))}
	for _, t := range res.Tags {
		s.Tags = append(s.Tags, policy.Candidate{Tag: t.Name, Created: t.Created})
	}
	return s
}

func failure(img update.Image, err error) helmfluxv1alpha1.ImageFailure {
	return helmfluxv1alpha1.ImageFailure{
		Workload: workloadID(img.Object), Container: img.Container, Image: img.Repository, Message: err.Error(),
	}
}

// workloadID names a workload as fluxctl does: <namespace>:<kind>/<name>.
func workloadID(o update.ObjectRef) string {
	return o.String()
}

func namespaceOf(o update.ObjectRef) string {
	if o.Namespace == "" {
		return apply.DefaultNamespace
	}
	return o.Namespace
}

// strayAnnotations reports per-container annotations that name no container
// of their object: a typo there would silently leave the real container on
// the default policy (any tag).
func strayAnnotations(images []update.Image) []helmfluxv1alpha1.ImageFailure {
	containers := map[update.ObjectRef]map[string]bool{}
	annotations := map[update.ObjectRef]map[string]string{}
	for _, img := range images {
		if containers[img.Object] == nil {
			containers[img.Object] = map[string]bool{}
			annotations[img.Object] = img.Annotations
		}
		containers[img.Object][img.Container] = true
	}
	var out []helmfluxv1alpha1.ImageFailure
	for obj, names := range containers {
		pol := policy.FromAnnotations(annotations[obj])
		if !pol.Automated {
			continue
		}
		for _, c := range pol.Containers() {
			if !names[c] {
				out = append(out, helmfluxv1alpha1.ImageFailure{
					Workload: workloadID(obj), Container: c,
					Message: fmt.Sprintf("a tag policy annotation names container %q, which %s does not have", c, workloadID(obj)),
				})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Workload+out[i].Container < out[j].Workload+out[j].Container })
	return out
}
