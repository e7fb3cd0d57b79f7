package notify

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"

	helmfluxv1alpha1 "github.com/helmflux/helmflux/api/helmflux/v1alpha1"
)

// Options tune delivery; a zero field takes its default.
type Options struct {
	// QueueSize bounds the messages waiting (default 1000); when full the
	// oldest is dropped, counted and logged.
	QueueSize int
	// Workers deliver in parallel (default 4).
	Workers int
	// Attempts per message and Alert before giving up (default 5).
	Attempts int
	// Timeout of one request (default 10s).
	Timeout time.Duration
	// Backoff is the wait before the first retry, doubled at each one,
	// with jitter, up to MaxBackoff (defaults 2s and 1m).
	Backoff    time.Duration
	MaxBackoff time.Duration
	// Dedupe is the window in which the same object, reason and message is
	// sent once (default 5m).
	Dedupe time.Duration
	// AllowLocalURLs lets an Alert's address name the operator's machine
	// (a loopback host), as --allow-local-urls does for sources.
	AllowLocalURLs bool
	// HTTPClient sends the messages; nil uses a default client.
	HTTPClient *http.Client
}

func (o Options) withDefaults() Options {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defd := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.QueueSize, 1000)
	def(&o.Workers, 4)
	def(&o.Attempts, 5)
	defd(&o.Timeout, 10*time.Second)
	defd(&o.Backoff, 2*time.Second)
	defd(&o.MaxBackoff, time.Minute)
	defd(&o.Dedupe, 5*time.Minute)
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{}
	}
	// A redirect could lead a tenant's message anywhere (the operator's
	// loopback included); a webhook has no need of one.
	c := *o.HTTPClient
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	o.HTTPClient = &c
	return o
}

// Notifier delivers queued Events to the Alerts of their namespace. It is a
// manager Runnable that runs on the leader only.
type Notifier struct {
	// Client reads Alerts (cached) and writes their status.
	Client client.Client
	// APIReader reads what must be live: the Alerts' Secrets (which are
	// not cached), and an Alert before its status is written.
	APIReader client.Reader
	// Log is the notifier's logger.
	Log logr.Logger

	opts Options

	mu      sync.Mutex
	queue   []job
	wake    chan struct{}
	seen    map[dedupeKey]time.Time
	dropped int64
}

// job is one message to deliver: to every matching Alert (alert unset), or
// a retry to one.
type job struct {
	ev      Event
	alert   client.ObjectKey
	attempt int
}

type dedupeKey struct{ kind, namespace, name, reason, message string }

// New returns a Notifier; add it to the manager to start delivering.
func New(c client.Client, apiReader client.Reader, log logr.Logger, opts Options) *Notifier {
	return &Notifier{Client: c, APIReader: apiReader, Log: log, opts: opts.withDefaults(),
		wake: make(chan struct{}, 1), seen: map[dedupeKey]time.Time{}}
}

// NeedLeaderElection is true: only the leader sends, so two replicas do not
// send every message twice.
func (n *Notifier) NeedLeaderElection() bool { return true }

// Start delivers until ctx ends.
func (n *Notifier) Start(ctx context.Context) error {
	var wg sync.WaitGroup
	for range n.opts.Workers {
		wg.Go(func() { n.work(ctx) })
	}
	wg.Wait()
	return nil
}

// enqueue adds a new Event, unless the same one was queued within the
// dedupe window. It never blocks.
func (n *Notifier) enqueue(ev Event) {
	key := dedupeKey{ev.Kind, ev.Namespace, ev.Name, ev.Reason, ev.Message}
	n.mu.Lock()
	now := time.Now()
	if last, ok := n.seen[key]; ok && now.Sub(last) < n.opts.Dedupe {
		n.mu.Unlock()
		return
	}
	if len(n.seen) >= 4*n.opts.QueueSize {
		for k, t := range n.seen {
			if now.Sub(t) >= n.opts.Dedupe {
				delete(n.seen, k)
			}
		}
		if len(n.seen) >= 4*n.opts.QueueSize {
			// More distinct events within the window than the bound: forget
			// them all rather than grow, at the cost of a repeated message.
			clear(n.seen)
		}
	}
	n.seen[key] = now
	n.mu.Unlock()
	n.push(job{ev: ev})
}

// push queues j, dropping the oldest job when the queue is full.
func (n *Notifier) push(j job) {
	n.mu.Lock()
	var dropped *job
	if len(n.queue) >= n.opts.QueueSize {
		oldest := n.queue[0]
		dropped = &oldest
		n.queue = n.queue[1:]
		n.dropped++
		droppedTotal.Inc()
	}
	n.queue = append(n.queue, j)
	count, length := n.dropped, len(n.queue)
	n.mu.Unlock()
	queueLength.Set(float64(length))
	if dropped != nil && (count == 1 || count%100 == 0) {
		n.Log.Info("Notification queue full, dropped the oldest message", "dropped", count,
			"kind", dropped.ev.Kind, "object", klog.KRef(dropped.ev.Namespace, dropped.ev.Name), "reason", dropped.ev.Reason)
	}
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// pop takes the oldest job, waiting for one until ctx ends.
func (n *Notifier) pop(ctx context.Context) (job, bool) {
	for {
		n.mu.Lock()
		if len(n.queue) > 0 {
			j := n.queue[0]
			n.queue = n.queue[1:]
			more := len(n.queue) > 0
			queueLength.Set(float64(len(n.queue)))
			n.mu.Unlock()
			if more { // pass the wake-up on to another worker
				select {
				case n.wake <- struct{}{}:
				default:
				}
			}
			return j, true
		}
		n.mu.Unlock()
		select {
		case <-ctx.Done():
			return job{}, false
		case <-n.wake:
		}
	}
}

// Dropped returns how many messages a full queue dropped.
func (n *Notifier) Dropped() int64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.dropped
}

// work delivers jobs until ctx ends.
func (n *Notifier) work(ctx context.Context) {
	for {
		j, ok := n.pop(ctx)
		if !ok {
			return
		}
		if j.alert.Name != "" {
			n.deliverTo(ctx, j)
			continue
		}
		alerts := &helmfluxv1alpha1.AlertList{}
		if err := n.Client.List(ctx, alerts, client.InNamespace(j.ev.Namespace)); err != nil {
			n.Log.Error(err, "List the Alerts of the namespace", "namespace", j.ev.Namespace)
			continue
		}
		for i := range alerts.Items {
			if a := &alerts.Items[i]; matches(a, j.ev) {
				n.deliverTo(ctx, job{ev: j.ev, alert: client.ObjectKeyFromObject(a)})
			}
		}
	}
}

// matches reports whether alert a wants ev: its own namespace only, not
// suspended, severity, kind, name and labels.
func matches(a *helmfluxv1alpha1.Alert, ev Event) bool {
	if a.Namespace != ev.Namespace || a.Spec.Suspend || !a.Sends(helmfluxv1alpha1.EventSeverity(ev.Severity)) {
		return false
	}
	for _, src := range a.Spec.EventSources {
		if src.Kind != ev.Kind || (src.Name != "*" && src.Name != ev.Name) {
			continue
		}
		if labelsMatch(src.MatchLabels, ev.labels) {
			return true
		}
	}
	return false
}

func labelsMatch(want, have map[string]string) bool {
	for k, v := range want {
		if got, ok := have[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// deliverTo sends j to its Alert once, and schedules a retry on a
// transient failure until the attempts run out.
func (n *Notifier) deliverTo(ctx context.Context, j job) {
	log := n.Log.WithValues("alert", klog.KRef(j.alert.Namespace, j.alert.Name), "kind", j.ev.Kind,
		"object", klog.KRef(j.ev.Namespace, j.ev.Name), "reason", j.ev.Reason)
	a := &helmfluxv1alpha1.Alert{}
	if err := n.Client.Get(ctx, j.alert, a); err != nil {
		log.V(1).Info("Alert gone, message not sent")
		return
	}
	if j.attempt > 0 && a.Spec.Suspend {
		return
	}
	address, err := resolveAddress(ctx, n.APIReader, a, n.opts.AllowLocalURLs)
	if err != nil {
		log.Info("Alert not ready, message not sent", "error", err.Error())
		return
	}
	err = n.send(ctx, a, address, j.ev)
	j.attempt++
	var perm *permanentError
	switch {
	case err == nil:
		deliveredTotal.Inc()
		log.V(1).Info("Message delivered", "attempt", j.attempt)
		n.setDelivered(ctx, j.alert, nil)
	case ctx.Err() != nil:
	case errors.As(err, &perm) || j.attempt >= n.opts.Attempts:
		failedTotal.Inc()
		log.Info("Gave up on a message", "attempts", j.attempt, "error", err.Error())
		n.setDelivered(ctx, j.alert, giveUp(j, err))
	default:
		wait := n.backoff(j.attempt)
		log.V(1).Info("Message not delivered, retrying", "attempt", j.attempt, "after", wait, "error", err.Error())
		time.AfterFunc(wait, func() {
			if ctx.Err() == nil {
				n.push(j)
			}
		})
	}
}

// backoff is the wait after attempt (1-based): Backoff doubled at each
// attempt, at most MaxBackoff, between half and all of it (jitter).
func (n *Notifier) backoff(attempt int) time.Duration {
	d := n.opts.Backoff << (attempt - 1)
	if d > n.opts.MaxBackoff || d <= 0 {
		d = n.opts.MaxBackoff
	}
	return d/2 + rand.N(d/2+1) // #nosec G404 -- spreading retries, not a secret
}
