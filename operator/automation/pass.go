package automation

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"golang.org/x/sync/errgroup"

	helmfluxv1alpha1 "github.com/helmflux/helmflux/api/helmflux/v1alpha1"
	"github.com/helmflux/helmflux/operator/checkout"
	"github.com/helmflux/helmflux/pkg/apply"
	"github.com/helmflux/helmflux/pkg/git"
	"github.com/helmflux/helmflux/pkg/history"
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
	// quarantines are the updates that write a failed tag's predecessor
	// back (also in updates), with why.
	quarantines []quarantine
	// holds are the holds in force; containers what was decided per
	// automated container.
	holds      []helmfluxv1alpha1.ImageHold
	containers []helmfluxv1alpha1.ContainerImage
	// files are the new contents of the files the updates change.
	files map[string][]byte
}

// QuarantineWindow is how long after an automation commit the release of
// its tag is watched for a failure: a rollout fails within its progress
// deadline (10 minutes by default) and a Helm upgrade within its timeout,
// so older commits are not checked, which keeps a pass from reading every
// automated Deployment.
const QuarantineWindow = time.Hour

// quarantine is a tag written back after the release with the failed tag
// failed.
type quarantine struct {
	update helmfluxv1alpha1.ImageUpdate
	// reason says what failed, without any values.
	reason string
}

// candidate is one automated container and its policy.
type candidate struct {
	img    update.Image
	policy policy.ContainerPolicy
	pull   pullConfig
	// written is the newest helmflux commit's account of the container,
	// if the history walk found one.
	written *history.Written
}

// planner runs one pass: read the checkout, find automated images, scan
// their registries, let the policies decide and rewrite the tags.
type planner struct {
	registry *registry.Client
	creds    *credentials
	paths    []string
	// history is the branch's history at the head planned on, newest
	// first; nil when the walk failed, which means no hold is known.
	history []git.LogEntry
	// failed, when set, reports whether the release of img with tag failed
	// after since (the commit that wrote tag), and why: what quarantine
	// acts on. nil turns quarantine off.
	failed func(ctx context.Context, img update.Image, tag string, since time.Time) (string, bool)
	// cause finds the commit that left img below the tag w wrote; ok is
	// false when it cannot tell.
	cause func(ctx context.Context, img update.Image, w history.Written) (git.LogEntry, bool)
}

// plan reads the checkout at dir and decides what to change there.
func (p *planner) plan(ctx context.Context, dir string) (*plan, error) {
	rd, err := checkout.Open(dir)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rd.Close() }()
	out := &plan{}
	files, errs := rd.YAMLUnder(p.paths)
	files, verrs := rd.WithValuesFiles(files)
	errs = append(errs, verrs...)
	images, ferrs := update.Find(files)
	errs = append(errs, ferrs...)
	for _, err := range errs {
		if errors.Is(err, checkout.ErrTooMuch) {
			return nil, err
		}
		out.fail(helmfluxv1alpha1.ImageFailure{Message: err.Error()})
	}

	out.failures = append(out.failures, strayAnnotations(images)...)
	pulls := pullConfigs(files)
	var cands []candidate
	for _, img := range images {
		pol := policy.FromAnnotations(img.Annotations)
		if !pol.Automated || pol.Ignored || !p.registry.Allowed(img.Repository) {
			continue
		}
		if pol.Locked {
			out.containers = append(out.containers, lockedContainer(img, pol))
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

	p.attachHistory(cands)
	changes, err := p.decide(ctx, cands, out)
	if err != nil {
		return nil, err
	}
	p.findCauses(ctx, cands, out)
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
	keptQ := out.quarantines[:0]
	for _, q := range out.quarantines {
		if _, ok := newFiles[q.update.File]; ok {
			keptQ = append(keptQ, q)
		}
	}
	out.quarantines = keptQ
	return out, nil
}

// attachHistory gives each candidate the newest helmflux commit's account
// of it, from the history walk.
func (p *planner) attachHistory(cands []candidate) {
	if p.history == nil {
		return
	}
	keys := make([]history.Key, 0, len(cands))
	for _, c := range cands {
		keys = append(keys, keyOf(c.img))
	}
	lw := history.LastWritten(p.history, keys)
	for i := range cands {
		if w, ok := lw[keyOf(cands[i].img)]; ok {
			cands[i].written = &w
		}
	}
}

func keyOf(img update.Image) history.Key {
	return history.Key{Workload: workloadID(img.Object), Repository: img.Repository}
}

// result is what decide found for one candidate.
type result struct {
	change     *update.Change
	upd        helmfluxv1alpha1.ImageUpdate
	quarantine string // the failure a quarantine change answers
	fail       *helmfluxv1alpha1.ImageFailure
	repo       string
	container  helmfluxv1alpha1.ContainerImage
	hold       *helmfluxv1alpha1.ImageHold
}

// decide scans every candidate's repository (in parallel, bounded) and asks
// its policy for a tag, under the holds the history gives. A candidate
// whose current tag helmflux wrote and whose release failed gets its
// previous tag back instead. A scan or policy failure leaves that image
// alone.
func (p *planner) decide(ctx context.Context, cands []candidate, out *plan) ([]update.Change, error) {
	results := make([]result, len(cands))
	var credMu sync.Mutex // credentials caches Secrets per pass
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(scanConcurrency)
	for i, c := range cands {
		g.Go(func() error {
			return p.decideOne(gctx, ctx, c, &credMu, &results[i])
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
			if r.quarantine != "" {
				out.quarantines = append(out.quarantines, quarantine{update: r.upd, reason: r.quarantine})
			}
		}
		out.containers = append(out.containers, r.container)
		if r.hold != nil {
			out.holds = append(out.holds, *r.hold)
		}
	}
	out.repositories = sortedKeys(repos)
	return changes, nil
}

// decideOne decides for one candidate into res; only a cancelled pass is
// an error.
func (p *planner) decideOne(gctx, ctx context.Context, c candidate, credMu *sync.Mutex, res *result) error {
	img := c.img
	res.container = helmfluxv1alpha1.ContainerImage{
		Workload: workloadID(img.Object), Container: img.Container, Image: img.Repository, Tag: img.Tag,
	}
	credMu.Lock()
	creds, credErrs := p.creds.forWorkload(gctx, c.pull)
	credMu.Unlock()
	opts := registry.ScanOptions{Credentials: creds}
	if c.policy.NeedsCreated() {
		opts.Created = c.policy.Filter.Match
	}
	scan, err := p.registry.Scan(gctx, img.Repository, opts)
	res.repo = scan.Repository
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if len(credErrs) > 0 {
			// Say why the login may be missing, not just what the registry answered.
			err = fmt.Errorf("%w (pull secrets: %w)", err, errors.Join(credErrs...))
		}
		if errors.Is(err, registry.ErrLocalURL) {
			err = fmt.Errorf("%w; the operator flag --allow-local-urls allows it", err)
		}
		f := failure(img, fmt.Errorf("scan %s: %w", img.Repository, err))
		res.fail = &f
		res.container.PassedOver = []helmfluxv1alpha1.PassedOverTag{{Reason: helmfluxv1alpha1.PassedRegistryError, Message: trimMessage(f.Message)}}
		res.container.Message = trimMessage(f.Message)
		return nil
	}
	if w := c.written; w != nil && !w.Quarantine && w.Tag == img.Tag && w.From != "" && p.failed != nil &&
		time.Since(w.Commit.Time) < QuarantineWindow {
		if why, failed := p.failed(gctx, img, w.Tag, w.Commit.Time); failed {
			res.change = &update.Change{Image: img, NewTag: w.From}
			res.upd = helmfluxv1alpha1.ImageUpdate{
				Workload: workloadID(img.Object), Container: img.Container,
				Image: img.Repository, From: img.Tag, To: w.From, File: img.File,
			}
			res.quarantine = why
			res.container.Best = w.From
			res.container.Message = trimMessage(fmt.Sprintf("%s; writing %s back and holding %s", why, w.From, w.Tag))
			return nil
		}
	}
	var holds []policy.Hold
	if w := c.written; w != nil {
		holds = []policy.Hold{{Tag: w.Tag, By: holdBy(*w)}}
	}
	d, err := policy.Decide(c.policy, img.Tag, toScan(scan), holds...)
	if err != nil {
		f := failure(img, err)
		res.fail = &f
		reason := helmfluxv1alpha1.PassedIncompleteScan
		if errors.Is(err, policy.ErrIncompleteScan) && strings.Contains(err.Error(), "creation time unknown") {
			reason = helmfluxv1alpha1.PassedNoCreationTime
		} else if !errors.Is(err, policy.ErrIncompleteScan) {
			reason = helmfluxv1alpha1.PassedFilter
		}
		res.container.PassedOver = []helmfluxv1alpha1.PassedOverTag{{Reason: reason, Message: trimMessage(err.Error())}}
		res.container.Message = trimMessage(err.Error())
		return nil
	}
	res.container.Best = d.Best
	res.container.Message = trimMessage(d.Reason)
	for _, po := range d.PassedOver {
		res.container.PassedOver = append(res.container.PassedOver, helmfluxv1alpha1.PassedOverTag{
			Tag: po.Tag, Reason: po.Why, Message: trimMessage(po.Detail),
		})
	}
	if d.Held != nil && c.written != nil {
		res.hold = newHold(img, *c.written)
	}
	if d.Changed {
		res.change = &update.Change{Image: img, NewTag: d.Tag}
		res.upd = helmfluxv1alpha1.ImageUpdate{
			Workload: workloadID(img.Object), Container: img.Container,
			Image: img.Repository, From: img.Tag, To: d.Tag, File: img.File,
		}
	}
	return nil
}

// holdBy describes a hold for decision reasons.
func holdBy(w history.Written) string {
	if w.Quarantine {
		return fmt.Sprintf("quarantined in %s", history.Short(w.Commit.Hash))
	}
	return fmt.Sprintf("helmflux wrote it in %s and a later commit went back below it", history.Short(w.Commit.Hash))
}

// newHold is the status entry of a hold in force; a rollback's commit is
// filled in by findCauses.
func newHold(img update.Image, w history.Written) *helmfluxv1alpha1.ImageHold {
	h := &helmfluxv1alpha1.ImageHold{
		Workload: workloadID(img.Object), Container: img.Container, Image: img.Repository,
		Tag: w.Tag, Current: img.Tag, Reason: helmfluxv1alpha1.HoldRollback,
		Message: fmt.Sprintf("helmflux wrote %s in %s; a later commit left %s, so no tag ranking at or below %s is written",
			w.Tag, history.Short(w.Commit.Hash), orNone(img.Tag), w.Tag),
	}
	if w.Quarantine {
		h.Reason = helmfluxv1alpha1.HoldQuarantine
		h.Commit = w.Commit.Hash
		since := metav1.NewTime(w.Commit.Time)
		h.Since = &since
		h.Message = trimMessage(fmt.Sprintf("%s was quarantined in %s: %s", w.Tag, history.Short(w.Commit.Hash), oneLine(w.Commit.Subject)))
	}
	return h
}

// findCauses names, for each rollback hold, the commit that left the
// container below the tag helmflux wrote.
func (p *planner) findCauses(ctx context.Context, cands []candidate, out *plan) {
	if p.cause == nil {
		return
	}
	byKey := map[[2]string]candidate{}
	for _, c := range cands {
		byKey[[2]string{workloadID(c.img.Object), c.img.Container}] = c
	}
	for i := range out.holds {
		h := &out.holds[i]
		c, ok := byKey[[2]string{h.Workload, h.Container}]
		if h.Reason != helmfluxv1alpha1.HoldRollback || !ok || c.written == nil {
			continue
		}
		if cm, ok := p.cause(ctx, c.img, *c.written); ok {
			h.Commit = cm.Hash
			since := metav1.NewTime(cm.Time)
			h.Since = &since
			h.Message = trimMessage(fmt.Sprintf("%s (%s) left %s below %s, which helmflux wrote in %s; no tag ranking at or below %s is written",
				history.Short(cm.Hash), oneLine(cm.Subject), orNone(h.Current), h.Tag, history.Short(c.written.Commit.Hash), h.Tag))
		}
	}
}

// lockedContainer reports a locked container: nothing is scanned or written.
func lockedContainer(img update.Image, pol policy.Policy) helmfluxv1alpha1.ContainerImage {
	msg := "locked"
	if pol.LockedMsg != "" {
		msg += ": " + pol.LockedMsg
	}
	if pol.LockedUser != "" {
		msg += " (by " + pol.LockedUser + ")"
	}
	return helmfluxv1alpha1.ContainerImage{
		Workload: workloadID(img.Object), Container: img.Container, Image: img.Repository, Tag: img.Tag,
		PassedOver: []helmfluxv1alpha1.PassedOverTag{{Reason: helmfluxv1alpha1.PassedLocked, Message: trimMessage(msg)}},
		Message:    trimMessage(msg),
	}
}

// maxReportMessage bounds the messages of holds and containers in status.
const maxReportMessage = 512

func trimMessage(s string) string {
	if len(s) <= maxReportMessage {
		return s
	}
	cut := maxReportMessage - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
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

// reportDecisions returns the holds and the containers as status keeps
// them: sorted by workload and container, and capped.
func (p *plan) reportDecisions() ([]helmfluxv1alpha1.ImageHold, []helmfluxv1alpha1.ContainerImage) {
	h := append([]helmfluxv1alpha1.ImageHold(nil), p.holds...)
	sort.Slice(h, func(i, j int) bool { return h[i].Workload+"/"+h[i].Container < h[j].Workload+"/"+h[j].Container })
	c := append([]helmfluxv1alpha1.ContainerImage(nil), p.containers...)
	sort.Slice(c, func(i, j int) bool { return c[i].Workload+"/"+c[i].Container < c[j].Workload+"/"+c[j].Container })
	return h[:min(len(h), maxReported)], c[:min(len(c), maxReported)]
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
