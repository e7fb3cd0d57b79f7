// Package webhook receives push notifications from git hosts and turns them into
// immediate GitSync reconciles, so a commit is applied in well under a second
// instead of at the next poll.
//
// Every replica of the operator serves the receivers, but only the leader
// reconciles. A push is therefore written into the cluster, as Flux's
// notification-controller does: the receiver sets the GitSync's
// reconcile.fluxcd.io/requestedAt annotation, the leader's watch sees the
// change at once, and a leader that takes over later finds the request not
// yet handled (status.lastHandledReconcileAt). A registry notification names
// an image, not an object, so a replica that does not lead refuses it with
// 503 and Retry-After and the registry sends it again.
package webhook

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	helmfluxv1alpha1 "github.com/helmflux/helmflux/api/helmflux/v1alpha1"
)

// MaxBody bounds a notification's body; push payloads of large pushes stay well below.
const MaxBody = 4 << 20

// TokenKey is the key of the webhook Secret holding the shared token.
const TokenKey = "token"

// PathPrefix is where GitSync receivers are served: PathPrefix<namespace>/<name>.
const PathPrefix = "/hooks/"

// Receiver serves POST /hooks/<namespace>/<name> for GitSyncs that name a
// webhookSecretRef. Three ways to authenticate, picked by the headers present:
//   - X-Hub-Signature-256: an HMAC-SHA256 of the body with the token (GitHub, Gitea);
//   - X-Gitlab-Token: the token itself (GitLab);
//   - Authorization: Bearer <token> (anything else).
//
// An authentic push is recorded on the GitSync (RequestReconcile), so it
// reaches the leader from whichever replica received it.
type Receiver struct {
	// Client reads GitSyncs and their webhook Secrets and patches GitSyncs'
	// annotations.
	Client client.Client
	// Reader, when set, reads GitSyncs instead of Client: the API server
	// itself for a shard (--watch-label-selector), whose cache does not
	// hold the GitSyncs of other shards, so that a push for one of them,
	// wherever the host sends it, is still written on it and reaches its
	// shard.
	Reader client.Reader
}

// Handler returns the receiver's HTTP handler.
func (rc *Receiver) Handler() http.Handler {
	mux := http.NewServeMux()
	rc.Register(mux)
	return mux
}

// Register adds the receiver's route to mux.
func (rc *Receiver) Register(mux *http.ServeMux) {
	mux.HandleFunc("POST "+PathPrefix+"{namespace}/{name}", rc.serveGitSync)
}

// errUnknown is answered for a GitSync that does not exist or takes no
// webhooks alike, so that the receiver does not reveal which GitSyncs exist.
var errUnknown = errors.New("no receiver here")

func (rc *Receiver) serveGitSync(w http.ResponseWriter, req *http.Request) {
	ctx := req.Context()
	log := ctrl.LoggerFrom(ctx).WithName("webhook")
	key := client.ObjectKey{Namespace: req.PathValue("namespace"), Name: req.PathValue("name")}

	// Authenticate before reading the body wherever the headers allow: a
	// request without a credential, or with a malformed signature, is refused
	// before the GitSync is looked up; a token is checked before the body is
	// read. Only an HMAC needs the body, and it is read (bounded) only for a
	// GitSync that takes webhooks.
	cred, err := credentialOf(req.Header)
	if err != nil {
		log.V(1).Info("Refused a notification without a usable credential", "gitsync", key, "reason", err.Error())
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	gs, token, err := rc.lookup(ctx, key)
	if errors.Is(err, errUnknown) {
		http.Error(w, errUnknown.Error(), http.StatusNotFound)
		return
	} else if err != nil {
		log.Error(err, "Unable to look up the receiver", "gitsync", key)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	if cred.signature == nil && !cred.matches(token) {
		log.Info("Refused a notification that failed authentication", "gitsync", klog.KObj(gs))
		http.Error(w, "unauthorized", http.StatusUnauthorized)
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
	if cred.signature != nil && !cred.signs(body, token) {
		log.Info("Refused a notification that failed authentication", "gitsync", klog.KObj(gs))
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	if reason := ignored(req.Header, body, gs); reason != "" {
		log.V(1).Info("Ignored a notification", "gitsync", klog.KObj(gs), "reason", reason)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		_, _ = fmt.Fprintln(w, "ignored:", reason) // #nosec G705 -- plain text, never rendered as HTML
		return
	}

	patchCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	requested, err := RequestReconcile(patchCtx, rc.Client, gs)
	if err != nil {
		log.Error(err, "Unable to record the push", "gitsync", klog.KObj(gs))
		w.Header().Set("Retry-After", "5")
		http.Error(w, "could not record the push, try again", http.StatusServiceUnavailable)
		return
	}
	log.V(1).Info("Push received, reconcile requested", "gitsync", klog.KObj(gs), "requestedAt", requested)
	w.WriteHeader(http.StatusAccepted)
	_, _ = fmt.Fprintln(w, "reconciling", key.String())
}

// RequestReconcile asks for a reconcile of obj the way `flux reconcile` and
// Flux's receivers do: it sets the reconcile.fluxcd.io/requestedAt
// annotation to a new token (the time, RFC 3339 with nanoseconds) and
// returns it. The controller, on whichever replica leads now or later,
// reacts to the change and records the token it handled in the status;
// a merge patch of the one annotation needs no resourceVersion and never
// conflicts with the controller's own writes.
func RequestReconcile(ctx context.Context, c client.Client, obj client.Object) (string, error) {
	token := time.Now().Format(time.RFC3339Nano)
	patch := fmt.Appendf(nil, `{"metadata":{"annotations":{%q:%q}}}`, meta.ReconcileRequestAnnotation, token)
	if err := c.Patch(ctx, obj, client.RawPatch(types.MergePatchType, patch)); err != nil {
		return "", fmt.Errorf("annotate %s/%s with %s: %w", obj.GetNamespace(), obj.GetName(), meta.ReconcileRequestAnnotation, err)
	}
	return token, nil
}

// lookup returns the GitSync and its webhook token.
func (rc *Receiver) lookup(ctx context.Context, key client.ObjectKey) (*helmfluxv1alpha1.GitSync, []byte, error) {
	var reader client.Reader = rc.Client
	if rc.Reader != nil {
		reader = rc.Reader
	}
	gs := &helmfluxv1alpha1.GitSync{}
	if err := reader.Get(ctx, key, gs); apierrors.IsNotFound(err) {
		return nil, nil, errUnknown
	} else if err != nil {
		return nil, nil, err
	}
	if gs.Spec.WebhookSecretRef == nil {
		return nil, nil, errUnknown
	}
	secret := &corev1.Secret{}
	err := rc.Client.Get(ctx, client.ObjectKey{Namespace: key.Namespace, Name: gs.Spec.WebhookSecretRef.Name}, secret)
	if apierrors.IsNotFound(err) {
		return nil, nil, errUnknown
	} else if err != nil {
		return nil, nil, err
	}
	token := secret.Data[TokenKey]
	if len(token) == 0 {
		return nil, nil, errUnknown
	}
	return gs, token, nil
}

// credential is what a notification authenticates with: an HMAC-SHA256
// signature of the body, or the token itself.
type credential struct {
	signature []byte // X-Hub-Signature-256, decoded
	token     []byte // X-Gitlab-Token or Authorization: Bearer
}

// errNoCredential is a request that names no credential, or a malformed one.
var errNoCredential = errors.New("no credential")

// credentialOf picks the credential from the headers, in this order:
// X-Hub-Signature-256, X-Gitlab-Token, Authorization: Bearer. A signature
// that is present but malformed is refused, never passed over for another
// header.
func credentialOf(h http.Header) (credential, error) {
	if sig := h.Get("X-Hub-Signature-256"); sig != "" {
		hexSig, ok := strings.CutPrefix(sig, "sha256=")
		got, err := hex.DecodeString(hexSig)
		if !ok || err != nil || len(got) != sha256.Size {
			return credential{}, fmt.Errorf("%w: malformed X-Hub-Signature-256", errNoCredential)
		}
		return credential{signature: got}, nil
	}
	if t := h.Get("X-Gitlab-Token"); t != "" {
		return credential{token: []byte(t)}, nil
	}
	if bearer, ok := strings.CutPrefix(h.Get("Authorization"), "Bearer "); ok && bearer != "" {
		return credential{token: []byte(bearer)}, nil
	}
	return credential{}, errNoCredential
}

// matches checks a token credential against the shared token in constant time.
func (c credential) matches(token []byte) bool {
	return c.token != nil && subtle.ConstantTimeCompare(c.token, token) == 1
}

// signs checks a signature credential: an HMAC-SHA256 of body with token.
func (c credential) signs(body, token []byte) bool {
	if c.signature == nil {
		return false
	}
	mac := hmac.New(sha256.New, token)
	mac.Write(body)
	return hmac.Equal(c.signature, mac.Sum(nil))
}

// authentic checks the notification against the shared token in constant time.
func authentic(h http.Header, body, token []byte) bool {
	c, err := credentialOf(h)
	if err != nil {
		return false
	}
	if c.signature != nil {
		return c.signs(body, token)
	}
	return c.matches(token)
}

// ignored says why a notification needs no fetch: an event that is not a push,
// or a push to a branch the GitSync does not follow. "" means fetch.
func ignored(h http.Header, body []byte, gs *helmfluxv1alpha1.GitSync) string {
	switch ev := h.Get("X-GitHub-Event"); ev {
	case "", "push":
	default:
		return "GitHub event " + ev
	}
	switch ev := h.Get("X-Gitlab-Event"); ev {
	case "", "Push Hook", "Tag Push Hook":
	default:
		return "GitLab event " + ev
	}
	var push struct {
		Ref string `json:"ref"`
	}
	if json.Unmarshal(body, &push) != nil || push.Ref == "" || gs.Spec.Ref == nil {
		return ""
	}
	switch ref := gs.Spec.Ref; {
	case ref.Branch != "" && strings.HasPrefix(push.Ref, "refs/heads/") && push.Ref != "refs/heads/"+ref.Branch:
		return "push to " + push.Ref + ", following branch " + ref.Branch
	case ref.Branch == "" && strings.HasPrefix(push.Ref, "refs/heads/"):
		return "push to " + push.Ref + ", following tags"
	}
	return ""
}
