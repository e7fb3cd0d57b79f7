package webhook

import (
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"

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
// send headers).
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
}

// RetryAfter is the Retry-After, in seconds, of a notification refused by a
// replica that does not lead.
const RetryAfter = "5"

// Register adds the receiver's route to mux.
func (rr *RegistryReceiver) Register(mux *http.ServeMux) {
	mux.HandleFunc("POST "+RegistryPath, rr.serve)
}

func (rr *RegistryReceiver) serve(w http.ResponseWriter, req *http.Request) {
	log := ctrl.LoggerFrom(req.Context()).WithName("registry-webhook")
	body, err := io.ReadAll(io.LimitReader(req.Body, MaxBody+1))
	if err != nil {
		http.Error(w, "read body", http.StatusBadRequest)
		return
	}
	if len(body) > MaxBody {
		http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
		return
	}
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
	images, err := RegistryImages(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	queued := 0
	for _, img := range images {
		n, err := rr.Rescan(img)
		if err != nil {
			http.Error(w, fmt.Sprintf("image %q: %v", img, err), http.StatusBadRequest)
			return
		}
		queued += n
	}
	log.V(1).Info("Registry notification received", "images", images, "queued", queued)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusAccepted)
	_, _ = fmt.Fprintf(w, "rescanning %d images for %d passes\n", len(images), queued)
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
