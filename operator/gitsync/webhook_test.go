package gitsync_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fluxcd/pkg/apis/meta"

	helmfluxv1alpha1 "github.com/helmflux/helmflux/api/helmflux/v1alpha1"
	"github.com/helmflux/helmflux/internal/testenv"
	"github.com/helmflux/helmflux/pkg/git/gittest"
)

// post sends a GitHub-style push notification signed with token.
func post(t *testing.T, ns, name, token, ref string) (int, string) {
	t.Helper()
	body := `{"ref":"` + ref + `","after":"0000000000000000000000000000000000000000"}`
	mac := hmac.New(sha256.New, []byte(token))
	mac.Write([]byte(body))
	req, err := http.NewRequest(http.MethodPost, hookURL+"/hooks/"+ns+"/"+name, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// A push notification applies the new commit at once: the GitSync polls only
// hourly and nobody sets an annotation. A forged notification, one for
// another branch and one for no GitSync start no pass.
func TestPushNotificationAppliesAtOnce(t *testing.T) {
	ns := newNamespace(t)
	repo := gittest.NewRepo(t, map[string]string{"settings.yaml": configMap(ns, "blue"), "none/empty.yaml": "# nothing\n"})
	const token = "hook-token-canary-51e2"
	createSecret(t, ns, "hook", map[string][]byte{"token": []byte(token)})
	createGitSync(t, ns, "pushed", helmfluxv1alpha1.GitSyncSpec{URL: repo.URL(),
		Ref: &helmfluxv1alpha1.GitRef{Branch: "main"}, WebhookSecretRef: &meta.LocalObjectReference{Name: "hook"}})
	// witness follows the same repository; its notification is the barrier
	// that shows the receiver's earlier answers have been acted on.
	createGitSync(t, ns, "witness", helmfluxv1alpha1.GitSyncSpec{URL: repo.URL(), Paths: []string{"none"},
		Ref: &helmfluxv1alpha1.GitRef{Branch: "main"}, WebhookSecretRef: &meta.LocalObjectReference{Name: "hook"}})
	waitApplied(t, ns, "pushed", repo.Head())
	waitApplied(t, ns, "witness", repo.Head())

	repo.Write(map[string]string{"settings.yaml": configMap(ns, "green")})
	hash := repo.Commit("green")

	if code, _ := post(t, ns, "pushed", "wrong-token", "refs/heads/main"); code != http.StatusUnauthorized {
		t.Errorf("a forged notification got %d, want 401", code)
	}
	if code, body := post(t, ns, "pushed", token, "refs/heads/feature"); code != http.StatusOK || !strings.Contains(body, "ignored") {
		t.Errorf("a push to another branch got %d %q, want 200 ignored", code, body)
	}
	if code, _ := post(t, ns, "missing", token, "refs/heads/main"); code != http.StatusNotFound {
		t.Errorf("a notification for no GitSync got %d, want 404", code)
	}
	// Pushes reach the controller in order: once the witness's pass ran and
	// the controller has nothing left to do, a pass the answers above had
	// started would have fetched the commit.
	if code, body := post(t, ns, "witness", token, "refs/heads/main"); code != http.StatusAccepted {
		t.Fatalf("witness notification got %d %q, want 202", code, body)
	}
	waitApplied(t, ns, "witness", hash)
	testenv.WaitIdle(t, time.Minute, "gitsync")
	if gs := getGitSync(t, ns, "pushed"); strings.HasSuffix(gs.Status.LastFetchedRevision, hash) {
		t.Fatal("the commit was fetched before an authentic push notification arrived")
	}

	if code, body := post(t, ns, "pushed", token, "refs/heads/main"); code != http.StatusAccepted {
		t.Fatalf("notification got %d %q, want 202", code, body)
	}
	waitApplied(t, ns, "pushed", hash)
	assertNoCanary(t, ns, token)
}
