// Package automation is the image automation controller: for every GitSync it
// finds the automated workloads and HelmReleases in the repository, asks the
// registries for their tags, lets the Flux v1 annotations pick a tag and
// pushes the new tags as one commit. It only orchestrates: scanning is
// pkg/registry, deciding pkg/policy, rewriting pkg/update and committing
// pkg/git.
package automation

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"text/template"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	lru "github.com/hashicorp/golang-lru/v2"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/source"

	helmfluxv1alpha1 "github.com/helmflux/helmflux/api/helmflux/v1alpha1"
	"github.com/helmflux/helmflux/operator/gitcreds"
	"github.com/helmflux/helmflux/operator/metrics"
	"github.com/helmflux/helmflux/operator/outcome"
	"github.com/helmflux/helmflux/pkg/git"
	"github.com/helmflux/helmflux/pkg/history"
	"github.com/helmflux/helmflux/pkg/registry"
	"github.com/helmflux/helmflux/pkg/update"
)

// Default commit identity, as documented for writeBack.author.
const (
	DefaultAuthorName  = gitcreds.DefaultAuthorName
	DefaultAuthorEmail = gitcreds.DefaultAuthorEmail
)

// Keys of the writeBack.signingKey Secret.
const (
	SigningKeyKey        = gitcreds.SigningKeyKey
	SigningPassphraseKey = gitcreds.SigningPassphraseKey
)

// Reconciler runs image automation passes over GitSyncs.
type Reconciler struct {
	// Client reads GitSyncs (cached), Secrets and ServiceAccounts, and
	// writes status.imageAutomation.
	Client client.Client
	// Git is the repository cache shared with the GitSync controller.
	Git *git.Cache
	// Registry scans image repositories.
	Registry *registry.Client
	// Events records commits and failures on the GitSync.
	Events events.EventRecorder
	// Interval is the time between two passes over one GitSync
	// (--automation-interval).
	Interval time.Duration
	// DockerConfig holds operator-wide registry logins, used after a
	// workload's own pull secrets.
	DockerConfig registry.Credentials
	// DockerConfigNamespace, when set, is the only namespace whose GitSyncs'
	// workloads get DockerConfig (--shared-docker-config=false): in a shared
	// cluster the operator's logins are not every tenant's.
	DockerConfigNamespace string
	// Synced receives a GitSync after a push, so the commit is applied at
	// once instead of at the next fetch.
	Synced chan<- event.GenericEvent
	// Concurrency is the number of GitSyncs processed in parallel.
	Concurrency int
	// APIReader reads workloads live (not through a cache of every
	// Deployment in the cluster) to tell whether a rollout of a tag
	// automation wrote failed; nil turns that check off for Deployments.
	APIReader client.Reader
	// Identity is the operator's SSH key, for GitSyncs over SSH that name
	// no secret.
	Identity gitcreds.Identity
	// NoCrossNamespaceRefs reads image pull Secrets only of workloads in
	// the GitSync's own namespace (--no-cross-namespace-refs).
	NoCrossNamespaceRefs bool
	// History bounds the history walk holds are derived from
	// (--hold-history-commits, --hold-history-age); zero values are the
	// defaults.
	History HistoryLimits
	// Metrics counts commits and holds; nil records nothing.
	Metrics *metrics.Recorder

	rescans chan event.GenericEvent
	mu      sync.Mutex
	users   map[string]map[types.NamespacedName]bool // repository -> GitSyncs using it
	causes  *causeCache
}

// SetupWithManager registers the controller under its own name, beside the
// GitSync controller, for GitSyncs whose spec changes and for rescans.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	r.rescans = make(chan event.GenericEvent, 1024)
	r.users = map[string]map[types.NamespacedName]bool{}
	causes, err := lru.New[string, git.LogEntry](maxCauses)
	if err != nil {
		return err
	}
	r.causes = causes
	return ctrl.NewControllerManagedBy(mgr).
		Named("imageautomation").
		For(&helmfluxv1alpha1.GitSync{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		WatchesRawSource(source.Channel(r.rescans, &handler.EnqueueRequestForObject{})).
		WithOptions(controller.Options{MaxConcurrentReconciles: max(1, r.Concurrency)}).
		Complete(r)
}

// Rescan forgets the cached tags of image and runs a pass over every GitSync
// whose last pass used it: what a registry webhook asks for. It reports how
// many GitSyncs were queued.
func (r *Reconciler) Rescan(image string) (int, error) {
	repo, err := registry.Normalize(image)
	if err != nil {
		return 0, err
	}
	r.Registry.Forget(image)
	r.mu.Lock()
	var keys []types.NamespacedName
	for k := range r.users[repo] {
		keys = append(keys, k)
	}
	r.mu.Unlock()
	for _, k := range keys {
		gs := &helmfluxv1alpha1.GitSync{ObjectMeta: metav1.ObjectMeta{Namespace: k.Namespace, Name: k.Name}}
		select {
		case r.rescans <- event.GenericEvent{Object: gs}:
		default: // a full queue already holds passes that will scan it
		}
	}
	return len(keys), nil
}

// remember records which repositories key's pass used.
func (r *Reconciler) remember(key types.NamespacedName, repos []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for repo, users := range r.users {
		delete(users, key)
		if len(users) == 0 {
			delete(r.users, repo)
		}
	}
	for _, repo := range repos {
		if r.users[repo] == nil {
			r.users[repo] = map[types.NamespacedName]bool{}
		}
		r.users[repo][key] = true
	}
}

// Reconcile runs one automation pass over a GitSync's repository.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	log := ctrl.LoggerFrom(ctx)
	obj := &helmfluxv1alpha1.GitSync{}
	if err := r.Client.Get(ctx, req.NamespacedName, obj); err != nil {
		if client.IgnoreNotFound(err) == nil {
			r.remember(req.NamespacedName, nil)
			r.Metrics.Deleted(metrics.KindGitSync, req.NamespacedName)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !obj.DeletionTimestamp.IsZero() {
		r.remember(req.NamespacedName, nil)
		return ctrl.Result{}, nil
	}
	if obj.Spec.Suspend {
		log.V(1).Info("Image automation is suspended", "gitsync", klog.KObj(obj))
		return ctrl.Result{}, nil
	}
	base := obj.DeepCopy()
	p, pushed, attempts, err := r.run(ctx, obj)
	if p != nil {
		r.remember(req.NamespacedName, p.repositories)
	}
	r.report(obj, p, pushed, err)
	if pushed != nil {
		r.Metrics.Committed(req.NamespacedName)
	}
	if st := obj.Status.ImageAutomation; st != nil {
		r.Metrics.Holds(req.NamespacedName, len(st.Holds))
	}
	if err := r.patchStatus(ctx, base, obj); err != nil {
		return ctrl.Result{}, err
	}
	// One line per finished pass, even one that changed no status: what
	// shows that a pass ran, and how often its push lost a race.
	log.V(1).Info(DoneMessage, "gitsync", klog.KObj(obj), "reason", readyReason(obj), "pushAttempts", attempts)
	if pushed != nil {
		log.Info("Pushed image updates", "gitsync", klog.KObj(obj), "revision", pushed.String(), "outcome", "success", "pushAttempts", attempts)
	}
	if pushed != nil && r.Synced != nil {
		select {
		case r.Synced <- event.GenericEvent{Object: obj}:
		default:
		}
	}
	err = classify(err)
	outcome.LogWaiting(ctx, err)
	return outcome.Result(err, r.interval())
}

// classify maps a failed pass to when the next one runs: run marks what is
// worth a sooner try (outcome.RetryAfter); the rest waits for the interval
// (its status says what failed either way).
func classify(err error) error {
	var e *outcome.Error
	if err == nil || errors.As(err, &e) {
		return err
	}
	return outcome.WaitForChange(helmfluxv1alpha1.AutomationFailedReason, err)
}

func (r *Reconciler) interval() time.Duration {
	if r.Interval <= 0 {
		return 5 * time.Minute
	}
	return r.Interval
}

// DoneMessage is the debug log line (V(1)) that ends every automation
// pass, with the keys gitsync, reason and pushAttempts (the
// edit-commit-push rounds; more than one means a push lost a race).
const DoneMessage = "Ran image automation pass"

// readyReason is the reason of status.imageAutomation's Ready, if any.
func readyReason(obj *helmfluxv1alpha1.GitSync) string {
	if st := obj.Status.ImageAutomation; st != nil {
		if c := apimeta.FindStatusCondition(st.Conditions, meta.ReadyCondition); c != nil {
			return c.Reason
		}
	}
	return ""
}

// pullSecretNamespace is the only namespace whose image pull Secrets a
// pass over obj reads, or "" for any.
// dockerConfigFor is the operator-wide logins a GitSync in namespace gets:
// all of them, or none outside DockerConfigNamespace.
func (r *Reconciler) dockerConfigFor(namespace string) registry.Credentials {
	if r.DockerConfigNamespace != "" && namespace != r.DockerConfigNamespace {
		return registry.Credentials{}
	}
	return r.DockerConfig
}

func (r *Reconciler) pullSecretNamespace(obj *helmfluxv1alpha1.GitSync) string {
	if r.NoCrossNamespaceRefs {
		return obj.Namespace
	}
	return ""
}

// run plans the pass on a fresh checkout of the branch head and, unless the
// GitSync is readOnly, commits and pushes the changes. It returns the plan
// of the last attempt, the pushed commit, if any, and the number of
// edit-commit-push rounds.
func (r *Reconciler) run(ctx context.Context, obj *helmfluxv1alpha1.GitSync) (*plan, *git.Revision, int, error) {
	if ref := obj.Spec.Ref; ref != nil && (ref.Tag != "" || ref.SemVer != "") {
		return nil, nil, 0, errors.New("image automation needs a branch: spec.ref follows a tag")
	}
	auth, err := gitcreds.Credentials(ctx, r.Client, obj, r.Identity)
	if err != nil {
		return nil, nil, 0, err
	}
	opts, tmpl, err := r.pushOptions(ctx, obj, auth)
	if err != nil {
		return nil, nil, 0, err
	}
	pl := &planner{registry: r.Registry, creds: newCredentials(r.Client, r.dockerConfigFor(obj.Namespace), r.pullSecretNamespace(obj)), paths: obj.Spec.Paths}
	if obj.Spec.WriteBack.QuarantineEnabled() {
		pl.failed = r.releaseFailed
	}
	ctx, cancel := context.WithTimeout(ctx, 4*obj.GetTimeout())
	defer cancel()

	keyRing, err := r.keyRing(ctx, obj)
	if err != nil {
		return nil, nil, 0, err
	}
	var last *plan
	var msgErr error
	edit := func(ctx context.Context, dir string, head git.Revision) (git.Edit, error) {
		if keyRing != "" {
			// A signed automation commit must not vouch for an unsigned
			// one below it (verify.mode head checks only the head).
			if err := r.Git.Verify(ctx, obj.Spec.URL, head, "", keyRing); err != nil {
				return git.Edit{}, fmt.Errorf("the branch head is not verified, so nothing is built on it: %w", err)
			}
		}
		pl.history = r.history(ctx, obj, head)
		pl.cause = func(ctx context.Context, img update.Image, w history.Written) (git.LogEntry, bool) {
			return r.cause(ctx, obj.Spec.URL, head, img, w)
		}
		p, err := pl.plan(ctx, dir)
		if err != nil {
			return git.Edit{}, err
		}
		last = p
		if obj.Spec.ReadOnly || len(p.files) == 0 {
			return git.Edit{}, nil
		}
		msg, err := message(tmpl, p.updates, p.quarantines)
		if err != nil {
			msgErr = err
			return git.Edit{}, nil
		}
		return git.Edit{Files: p.files, Message: msg}, nil
	}
	res, err := r.Git.CommitAndPush(ctx, obj.Spec.URL, opts, edit)
	if err != nil {
		if errors.Is(err, git.ErrPushRejected) || !errors.Is(err, git.ErrInvalidInput) {
			// A lost push race or an unreachable remote: try again within a minute.
			err = outcome.RetryAfter(helmfluxv1alpha1.AutomationFailedReason, min(r.interval(), time.Minute), err)
		}
		return last, nil, res.Attempts, err
	}
	if last != nil {
		obj.Status.ImageAutomation = ensureStatus(obj)
		obj.Status.ImageAutomation.LastRevision = res.Base.String()
	}
	if msgErr != nil {
		return last, nil, res.Attempts, msgErr
	}
	if res.Commit.Hash == "" {
		return last, nil, res.Attempts, nil
	}
	return last, &res.Commit, res.Attempts, nil
}

// keyRing returns the keys that must have signed the head automation builds
// on, "" when the GitSync verifies nothing.
func (r *Reconciler) keyRing(ctx context.Context, obj *helmfluxv1alpha1.GitSync) (string, error) {
	if v := obj.Spec.Verify; v == nil || v.Mode == helmfluxv1alpha1.VerifyNone {
		return "", nil
	}
	return gitcreds.KeyRing(ctx, r.Client, obj)
}

// pushOptions reads the commit identity, signing key and message template.
func (r *Reconciler) pushOptions(ctx context.Context, obj *helmfluxv1alpha1.GitSync, auth *git.Auth) (git.PushOptions, *template.Template, error) {
	opts, err := gitcreds.PushOptions(ctx, r.Client, obj, auth)
	if err != nil {
		return opts, nil, err
	}
	var text string
	if wb := obj.Spec.WriteBack; wb != nil {
		text = wb.MessageTemplate
	}
	t, err := parseTemplate(text)
	return opts, t, err
}

func ensureStatus(obj *helmfluxv1alpha1.GitSync) *helmfluxv1alpha1.ImageAutomationStatus {
	if obj.Status.ImageAutomation == nil {
		return &helmfluxv1alpha1.ImageAutomationStatus{}
	}
	return obj.Status.ImageAutomation
}

// report writes the outcome of a pass into status.imageAutomation and
// records events for what changed.
func (r *Reconciler) report(obj *helmfluxv1alpha1.GitSync, p *plan, pushed *git.Revision, err error) {
	st := ensureStatus(obj)
	obj.Status.ImageAutomation = st
	before := apimeta.FindStatusCondition(st.Conditions, meta.ReadyCondition)
	var beforeMsg string
	if before != nil {
		beforeMsg = before.Message
	}
	heldBefore := append([]helmfluxv1alpha1.ImageHold(nil), st.Holds...)
	summarize(obj, p, pushed, err)
	after := apimeta.FindStatusCondition(st.Conditions, meta.ReadyCondition)
	if r.Events == nil || after == nil {
		return
	}
	r.holdEvents(obj, heldBefore, st.Holds, p)
	if p != nil && pushed != nil {
		for _, q := range p.quarantines {
			r.Events.Eventf(obj, nil, corev1.EventTypeWarning, helmfluxv1alpha1.ImageQuarantinedReason, "Quarantine",
				"%s (%s): wrote %s back over %s in %s: %s", q.update.Workload, q.update.Container, q.update.To, q.update.From, history.Short(pushed.Hash), oneLine(q.reason))
		}
	}
	switch {
	case pushed != nil:
		r.Events.Eventf(obj, nil, corev1.EventTypeNormal, helmfluxv1alpha1.ImagesUpdatedReason, "Commit", "%s", after.Message)
	case after.Status != metav1.ConditionTrue && after.Message != beforeMsg:
		r.Events.Eventf(obj, nil, corev1.EventTypeWarning, after.Reason, "Automate", "%s", after.Message)
	case after.Reason == helmfluxv1alpha1.UpdatesPendingReason && after.Message != beforeMsg:
		r.Events.Eventf(obj, nil, corev1.EventTypeNormal, after.Reason, "Automate", "%s", after.Message)
	}
}

// summarize sets status.imageAutomation from a pass's outcome. Pure.
func summarize(obj *helmfluxv1alpha1.GitSync, p *plan, pushed *git.Revision, err error) {
	st := ensureStatus(obj)
	obj.Status.ImageAutomation = st
	c := outcome.Conditions{List: &st.Conditions, Generation: obj.Generation}
	set := func(status metav1.ConditionStatus, reason, msg string) {
		c.Set(meta.ReadyCondition, status, reason, msg)
	}
	st.Pending = nil
	if p != nil {
		updates, failures := p.report()
		st.AutomatedImages = p.automated
		st.Failures = failures
		st.Holds, st.Containers = p.reportDecisions()
		if obj.Spec.ReadOnly {
			st.Pending = updates
		}
	}
	switch {
	case err != nil && errors.Is(err, git.ErrPushRejected):
		set(metav1.ConditionFalse, helmfluxv1alpha1.PushFailedReason, err.Error())
	case err != nil:
		set(metav1.ConditionFalse, helmfluxv1alpha1.AutomationFailedReason, err.Error())
	case pushed != nil:
		now := metav1.Now()
		st.LastPushedCommit = pushed.String()
		st.LastPushTime = &now
		set(metav1.ConditionTrue, helmfluxv1alpha1.ImagesUpdatedReason, pushedMessage(pushed, p))
	case len(st.Failures) > 0:
		set(metav1.ConditionFalse, helmfluxv1alpha1.ScanFailedReason, failureMessage(st.Failures))
	case len(st.Pending) > 0:
		set(metav1.ConditionTrue, helmfluxv1alpha1.UpdatesPendingReason, pendingMessage(st.Pending))
	default:
		set(metav1.ConditionTrue, helmfluxv1alpha1.ImagesUpToDateReason,
			fmt.Sprintf("%d automated images run the tags their policies pick", st.AutomatedImages))
	}
}

func pushedMessage(rev *git.Revision, p *plan) string {
	short := rev.Hash
	if len(short) > 7 {
		short = short[:7]
	}
	return fmt.Sprintf("Committed %s to %s: %s", short, rev.Ref, updateList(p.updates))
}

func pendingMessage(u []helmfluxv1alpha1.ImageUpdate) string {
	return "readOnly: would commit " + updateList(u)
}

// updateList says "a 1.0 → 1.1, b 2 → 3 and 4 more".
func updateList(u []helmfluxv1alpha1.ImageUpdate) string {
	const show = 3
	parts := make([]string, 0, show)
	for i, x := range u {
		if i == show {
			parts = append(parts, fmt.Sprintf("and %d more", len(u)-show))
			break
		}
		parts = append(parts, fmt.Sprintf("%s %s → %s", x.Image, orNone(x.From), x.To))
	}
	return strings.Join(parts, ", ")
}

func failureMessage(f []helmfluxv1alpha1.ImageFailure) string {
	first := f[0]
	where := first.Workload
	if first.Container != "" {
		where += " (" + first.Container + ")"
	}
	if where != "" {
		where += ": "
	}
	msg := where + first.Message
	if len(f) > 1 {
		msg += fmt.Sprintf(" (and %d more failures)", len(f)-1)
	}
	return msg
}

// patchStatus writes status.imageAutomation when it changed. A pass that
// changed nothing writes nothing: lastRunTime moves only with a change.
func (r *Reconciler) patchStatus(ctx context.Context, base, obj *helmfluxv1alpha1.GitSync) error {
	_, err := outcome.PatchStatus(ctx, r.Client, base, obj, func() {
		now := metav1.Now()
		obj.Status.ImageAutomation.LastRunTime = &now
	})
	return err
}
