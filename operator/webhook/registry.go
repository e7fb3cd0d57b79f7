package webhook

import (
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
	ctrl "sigs.k8s.io/controller-runtime"
)

// RegistryPath is where registry push notifications are received.
const RegistryPath = "/registry-hooks"

// maxRegistryImages bounds the images one notification may name.
const maxRegistryImages = 100

// RegistryReceiver serves POST /registry-hooks: a registry says an image
// repository got a new tag, and every GitSync whose automation uses that
// repository runs a pass at once, instead of at the next interval. It accepts:
//   - generic: {"image": "host/repo[:tag]"} or {"repository": "host/repo"};
//   - Docker Hub: {"push_data": {...}, "repository": {"repo_name": "org/app"}};
//   - Docker Distribution (and registries that speak its notifications):
//     {"events": [{"action": "push", "target": {"repository": "app"}, "request": {"host": "reg:5000"}}]}.
//
// The payload only names what to rescan; tags always come from the registry,
// so a forged notification cannot choose a tag. With a Token set, requests
// need "Authorization: Bearer <token>" or "?token=<token>" (Docker Hub cannot
// send headers), checked before the body is read.
//
// Forced rescans are rate-limited, so that a notification, forged or not,
// cannot make the operator hammer a registry: an image repository is
// rescanned at most once per RescanInterval (TokenRescanInterval with a
// Token), and all repositories together at most RescansPerSecond
// (TokenRescansPerSecond) with a burst of RescanBurst. An image over the
// limit is not rescanned; the notification is answered 429 with
// Retry-After, and a registry that retries brings it when it is due.
type RegistryReceiver struct {
	// Token, when not empty, authenticates notifications.
	Token []byte
	// Rescan forgets cached tags of image and queues the passes that use it,
	// returning how many were queued.
	Rescan func(image string) (int, error)
	// Leading says whether this replica leads, that is runs the automation
	// passes Rescan queues; nil is always. A replica that does not lead
	// answers 503 with Retry-After, never 2xx for a notification it would
	// drop: the registry retries, and a Service sends the retry to another
	// replica, sooner or later the leader.
	Leading func() bool
	// Interval, when above 0, is the least time between two forced rescans
	// of one image repository, instead of RescanInterval (TokenRescanInterval
	// with a Token).
	Interval time.Duration

	once    sync.Once
	limiter *rescanLimiter
	now     func() time.Time // the limiter's clock; nil is time.Now
}

// Rescan limits of the registry receiver.
const (
	// RescanInterval is the least time between two forced rescans of one
	// image repository when notifications are not authenticated.
	RescanInterval = 10 * time.Second
	// TokenRescanInterval is RescanInterval when they are: a leaked token
	// still cannot hammer a registry.
	TokenRescanInterval = 2 * time.Second
	// RescansPerSecond bounds forced rescans of all repositories together
	// without a token, TokenRescansPerSecond with one.
	RescansPerSecond      = 1
	TokenRescansPerSecond = 5
	// RescanBurst is how many rescans of different repositories may come at
	// once: one notification names at most this many.
	RescanBurst = maxRegistryImages
)

// RetryAfter is the Retry-After, in seconds, of a notification refused by a
// replica that does not lead.
const RetryAfter = "5"

// Register adds the receiver's route to mux.
func (rr *RegistryReceiver) Register(mux *http.ServeMux) {
	mux.HandleFunc("POST "+RegistryPath, rr.serve)
}

func (rr *RegistryReceiver) serve(w http.ResponseWriter, req *http.Request) {
	log := ctrl.LoggerFrom(req.Context()).WithName("registry-webhook")
	rr.once.Do(func() {
		rr.limiter = newRescanLimiter(len(rr.Token) > 0)
		if rr.Interval > 0 {
			rr.limiter.interval = rr.Interval
		}
		if rr.now == nil {
			rr.now = time.Now
		}
	})
	if !rr.authentic(req) {
		log.Info("Refused a registry notification that failed authentication")
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	if rr.Leading != nil && !rr.Leading() {
		log.V(1).Info("Refused a registry notification: this replica does not lead")
		w.Header().Set("Retry-After", RetryAfter)
		http.Error(w, "this replica is not the leader, try again", http.StatusServiceUnavailable)
		return
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, MaxBody+1))
	if err != nil {
		http.Error(w, "read body", http.StatusBadRequest)
		return
	}
	if len(body) > MaxBody {
		http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
		return
	}
	images, err := RegistryImages(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	queued, rescanned := 0, 0
	var wait time.Duration // the longest an image over the limit must wait
	for _, img := range images {
		if d := rr.limiter.allow(img, rr.now()); d > 0 {
			wait = max(wait, d)
			continue
		}
		n, err := rr.Rescan(img)
		if err != nil {
			http.Error(w, fmt.Sprintf("image %q: %v", img, err), http.StatusBadRequest)
			return
		}
		queued += n
		rescanned++
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if wait > 0 {
		log.V(1).Info("Registry notification over the rescan limit", "images", images, "rescanned", rescanned, "queued", queued)
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = fmt.Fprintf(w, "rescanned %d of %d images for %d passes; the others were rescanned too recently, try again later\n", rescanned, len(images), queued)
		return
	}
	log.V(1).Info("Registry notification received", "images", images, "queued", queued)
	w.WriteHeader(http.StatusAccepted)
	_, _ = fmt.Fprintf(w, "rescanning %d images for %d passes\n", len(images), queued)
}

// rescanLimiter bounds forced rescans: one per image repository per
// interval, and all together by a token bucket.
type rescanLimiter struct {
	mu       sync.Mutex
	interval time.Duration
	overall  *rate.Limiter
	last     map[string]time.Time // the last forced rescan of each repository
}

// maxTracked is how many repositories the limiter remembers before it
// forgets those whose interval has passed.
const maxTracked = 1024

func newRescanLimiter(token bool) *rescanLimiter {
	l := &rescanLimiter{interval: RescanInterval, overall: rate.NewLimiter(RescansPerSecond, RescanBurst), last: map[string]time.Time{}}
	if token {
		l.interval, l.overall = TokenRescanInterval, rate.NewLimiter(TokenRescansPerSecond, RescanBurst)
	}
	return l
}

// allow records a rescan of image at now and returns 0, or returns how long
// until image may be rescanned.
func (l *rescanLimiter) allow(image string, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if t, ok := l.last[image]; ok && now.Sub(t) < l.interval {
		return l.interval - now.Sub(t)
	}
	r := l.overall.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return d
	}
	if len(l.last) >= maxTracked {
		for img, t := range l.last {
			if now.Sub(t) >= l.interval {
				delete(l.last, img)
			}
		}
	}
	l.last[image] = now
	return 0
}

func (rr *RegistryReceiver) authentic(req *http.Request) bool {
	if len(rr.Token) == 0 {
		return true
	}
	got, ok := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer ")
	if !ok {
		got = req.URL.Query().Get("token")
	}
	return got != "" && subtle.ConstantTimeCompare([]byte(got), rr.Token) == 1
}

// RegistryImages returns the image repositories a notification names,
// without tags, sorted and de-duplicated.
func RegistryImages(body []byte) ([]string, error) {
	var p struct {
		Image      string          `json:"image"`
		Repository json.RawMessage `json:"repository"`
		PushData   json.RawMessage `json:"push_data"`
		Events     []struct {
			Action string `json:"action"`
			Target struct {
				Repository string `json:"repository"`
			} `json:"target"`
			Request struct {
				Host string `json:"host"`
			} `json:"request"`
		} `json:"events"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		return nil, fmt.Errorf("payload is not JSON: %w", err)
	}
	seen := map[string]bool{}
	add := func(s string) {
		if s = strings.TrimSpace(s); s != "" && len(seen) < maxRegistryImages {
			seen[withoutTag(s)] = true
		}
	}
	add(p.Image)
	if len(p.Repository) > 0 {
		var name string
		var hub struct {
			RepoName string `json:"repo_name"`
		}
		switch {
		case json.Unmarshal(p.Repository, &name) == nil:
			add(name)
		case json.Unmarshal(p.Repository, &hub) == nil:
			add(hub.RepoName)
		}
	}
	for _, e := range p.Events {
		if e.Action != "push" || e.Target.Repository == "" {
			continue
		}
		if e.Request.Host != "" {
			add(e.Request.Host + "/" + e.Target.Repository)
		} else {
			add(e.Target.Repository)
		}
	}
	if len(seen) == 0 {
		return nil, fmt.Errorf("payload names no image repository")
	}
	out := make([]string, 0, len(seen))
	for s := range seen {
		out = append(out, s)
	}
	sort.Strings(out)
	return out, nil
}

// withoutTag drops a ":tag" or "@digest" suffix from an image reference.
func withoutTag(ref string) string {
	if i := strings.IndexByte(ref, '@'); i >= 0 {
		ref = ref[:i]
	}
	if i := strings.LastIndexByte(ref, ':'); i > strings.LastIndexByte(ref, '/') {
		ref = ref[:i]
	}
	return ref
}
