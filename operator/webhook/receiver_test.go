package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"testing"

	helmfluxv1alpha1 "github.com/helmflux/helmflux/api/helmflux/v1alpha1"
)

func sign(token, body string) string {
	mac := hmac.New(sha256.New, []byte(token))
	mac.Write([]byte(body))
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

func TestAuthentic(t *testing.T) {
	const token, body = "s3cret", `{"ref":"refs/heads/main"}`
	tests := []struct {
		name   string
		header map[string]string
		want   bool
	}{
		{name: "GitHub signature", header: map[string]string{"X-Hub-Signature-256": sign(token, body)}, want: true},
		{name: "GitHub wrong key", header: map[string]string{"X-Hub-Signature-256": sign("other", body)}},
		{name: "GitHub garbage", header: map[string]string{"X-Hub-Signature-256": "sha256=zz"}},
		{name: "GitLab token", header: map[string]string{"X-Gitlab-Token": token}, want: true},
		{name: "GitLab wrong token", header: map[string]string{"X-Gitlab-Token": "s3cre"}},
		{name: "bearer", header: map[string]string{"Authorization": "Bearer " + token}, want: true},
		{name: "bearer wrong", header: map[string]string{"Authorization": "Bearer nope"}},
		{name: "basic is not accepted", header: map[string]string{"Authorization": "Basic " + token}},
		{name: "nothing", header: map[string]string{}},
		// A signature header that is present but wrong must not fall back to another method.
		{name: "bad signature with a good bearer", header: map[string]string{"X-Hub-Signature-256": sign("x", body), "Authorization": "Bearer " + token}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tt.header {
				h.Set(k, v)
			}
			if got := authentic(h, []byte(body), []byte(token)); got != tt.want {
				t.Errorf("authentic() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestIgnored(t *testing.T) {
	branch := &helmfluxv1alpha1.GitSync{Spec: helmfluxv1alpha1.GitSyncSpec{Ref: &helmfluxv1alpha1.GitRef{Branch: "main"}}}
	tags := &helmfluxv1alpha1.GitSync{Spec: helmfluxv1alpha1.GitSyncSpec{Ref: &helmfluxv1alpha1.GitRef{SemVer: ">=1.0.0"}}}
	head := &helmfluxv1alpha1.GitSync{}
	tests := []struct {
		name    string
		gs      *helmfluxv1alpha1.GitSync
		header  map[string]string
		body    string
		ignored bool
	}{
		{name: "push to the branch", gs: branch, header: map[string]string{"X-GitHub-Event": "push"}, body: `{"ref":"refs/heads/main"}`},
		{name: "push to another branch", gs: branch, header: map[string]string{"X-GitHub-Event": "push"}, body: `{"ref":"refs/heads/dev"}`, ignored: true},
		{name: "GitHub ping", gs: branch, header: map[string]string{"X-GitHub-Event": "ping"}, body: `{}`, ignored: true},
		{name: "GitLab push", gs: branch, header: map[string]string{"X-Gitlab-Event": "Push Hook"}, body: `{"ref":"refs/heads/main"}`},
		{name: "GitLab merge request", gs: branch, header: map[string]string{"X-Gitlab-Event": "Merge Request Hook"}, body: `{}`, ignored: true},
		{name: "tag push for a semver GitSync", gs: tags, body: `{"ref":"refs/tags/v1.2.0"}`},
		{name: "branch push for a semver GitSync", gs: tags, body: `{"ref":"refs/heads/main"}`, ignored: true},
		{name: "following HEAD takes any push", gs: head, body: `{"ref":"refs/heads/whatever"}`},
		{name: "generic body", gs: branch, body: `not json`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tt.header {
				h.Set(k, v)
			}
			if got := ignored(h, []byte(tt.body), tt.gs) != ""; got != tt.ignored {
				t.Errorf("ignored() = %v, want %v", got, tt.ignored)
			}
		})
	}
}
