package webhook_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/fluxcd/pkg/apis/meta"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	helmfluxv1alpha1 "github.com/helmflux/helmflux/api/helmflux/v1alpha1"
	"github.com/helmflux/helmflux/internal/testenv"
	"github.com/helmflux/helmflux/operator/webhook"
)

// recordingBody is a request body that records whether the handler read it.
type recordingBody struct {
	r    io.Reader
	read bool
}

func (b *recordingBody) Read(p []byte) (int, error) {
	b.read = true
	return b.r.Read(p)
}

func (b *recordingBody) Close() error { return nil }

// controlPlane starts a control plane for one test and returns a client.
func controlPlane(t *testing.T) client.Client {
	t.Helper()
	env, err := testenv.New()
	if errors.Is(err, testenv.ErrMissingBinary) {
		t.Skip(err)
	} else if err != nil {
		t.Fatal(err)
	}
	cfg, err := env.Start()
	if err != nil {
		t.Fatal("start the control plane:", err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	c, err := client.New(cfg, client.Options{Scheme: testenv.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// The push receiver authenticates from the headers before it reads a body:
// a request without a credential, with a malformed signature, with a wrong
// token, or for a GitSync that takes no webhooks is refused with its body
// unread. Only an HMAC of a GitSync that takes webhooks reads the body.
func TestPushReceiverAuthenticatesBeforeReading(t *testing.T) {
	c := controlPlane(t)
	ctx := context.Background()
	ns := testenv.NewNamespace(t, c, "hooks")
	const token = "hook-token-canary-7f3a"
	if err := c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "hook"},
		Data: map[string][]byte{webhook.TokenKey: []byte(token)}}); err != nil {
		t.Fatal(err)
	}
	for name, ref := range map[string]*meta.LocalObjectReference{"hooked": {Name: "hook"}, "unhooked": nil} {
		gs := &helmfluxv1alpha1.GitSync{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: helmfluxv1alpha1.GitSyncSpec{URL: "https://git.example/repo.git", WebhookSecretRef: ref}}
		if err := c.Create(ctx, gs); err != nil {
			t.Fatal(err)
		}
	}
	const body = `{"ref":"refs/heads/main"}`
	mac := hmac.New(sha256.New, []byte(token))
	mac.Write([]byte(body))
	goodSig := "sha256=" + hex.EncodeToString(mac.Sum(nil))
	wrongSig := "sha256=" + strings.Repeat("ab", sha256.Size)

	handler := (&webhook.Receiver{Client: c}).Handler()
	tests := []struct {
		name, gitsync string
		header        map[string]string
		code          int
		read          bool
	}{
		{name: "no credential", gitsync: "hooked", code: http.StatusUnauthorized},
		{name: "basic auth is no credential", gitsync: "hooked", header: map[string]string{"Authorization": "Basic " + token}, code: http.StatusUnauthorized},
		{name: "malformed signature", gitsync: "hooked", header: map[string]string{"X-Hub-Signature-256": "sha256=zz"}, code: http.StatusUnauthorized},
		{name: "short signature", gitsync: "hooked", header: map[string]string{"X-Hub-Signature-256": "sha256=abcd"}, code: http.StatusUnauthorized},
		{name: "signature without sha256=", gitsync: "hooked", header: map[string]string{"X-Hub-Signature-256": strings.Repeat("ab", sha256.Size)}, code: http.StatusUnauthorized},
		{name: "wrong bearer", gitsync: "hooked", header: map[string]string{"Authorization": "Bearer nope"}, code: http.StatusUnauthorized},
		{name: "wrong GitLab token", gitsync: "hooked", header: map[string]string{"X-Gitlab-Token": "nope"}, code: http.StatusUnauthorized},
		{name: "signature for no GitSync", gitsync: "missing", header: map[string]string{"X-Hub-Signature-256": goodSig}, code: http.StatusNotFound},
		{name: "signature for a GitSync without webhooks", gitsync: "unhooked", header: map[string]string{"X-Hub-Signature-256": goodSig}, code: http.StatusNotFound},
		{name: "wrong signature", gitsync: "hooked", header: map[string]string{"X-Hub-Signature-256": wrongSig}, code: http.StatusUnauthorized, read: true},
		{name: "good signature", gitsync: "hooked", header: map[string]string{"X-Hub-Signature-256": goodSig}, code: http.StatusAccepted, read: true},
		{name: "good bearer", gitsync: "hooked", header: map[string]string{"Authorization": "Bearer " + token}, code: http.StatusAccepted, read: true},
		{name: "good GitLab token", gitsync: "hooked", header: map[string]string{"X-Gitlab-Token": token}, code: http.StatusAccepted, read: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &recordingBody{r: strings.NewReader(body)}
			req := httptest.NewRequest(http.MethodPost, webhook.PathPrefix+ns+"/"+tt.gitsync, b)
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			handler.ServeHTTP(w, req)
			if w.Code != tt.code {
				t.Errorf("answered %d %q, want %d", w.Code, w.Body.String(), tt.code)
			}
			if b.read != tt.read {
				t.Errorf("body read: %v, want %v", b.read, tt.read)
			}
		})
	}
}
