package fluxapi

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/helmflux/helmflux/pkg/update"
)

func TestParseID(t *testing.T) {
	for in, want := range map[string]string{
		"apps:deployment/web":       "apps:deployment/web",
		"apps:Deployment/web":       "apps:deployment/web",
		"<cluster>:namespace/apps":  "<cluster>:namespace/apps",
		"apps/web":                  "apps:deployment/web",
		"apps:helmrelease/podinfo":  "apps:helmrelease/podinfo",
		"default:cronjob/nightly-1": "default:cronjob/nightly-1",
	} {
		id, err := ParseID(in)
		if err != nil || id.String() != want {
			t.Errorf("ParseID(%q) = %v, %v; want %s", in, id, err, want)
		}
	}
	for _, bad := range []string{"", "web", "apps:web", ":deployment/web", "apps:/web", "apps:deployment/", "a/b/c", "apps:deployment/a/b"} {
		if id, err := ParseID(bad); err == nil {
			t.Errorf("ParseID(%q) = %v, want an error", bad, id)
		}
	}
	legacy, _ := ParseID("apps/web")
	sts, _ := ParseID("apps:statefulset/web")
	if !legacy.matches(sts) {
		t.Error("a legacy ID must match a workload of any kind with its namespace and name")
	}
	dep, _ := ParseID("apps:deployment/web")
	if dep.matches(sts) {
		t.Error("a deployment ID matched a statefulset")
	}
}

func TestPolicies(t *testing.T) {
	got := policies(map[string]string{
		"fluxcd.io/automated":          "true",
		"flux.weave.works/locked":      "true",
		"fluxcd.io/tag.app":            "glob:1.*",
		"filter.fluxcd.io/app":         "semver:~1.0",
		"flux.weave.works/tag.sidecar": "glob:*",
		"fluxcd.io/sync-checksum":      "abc",
		"unrelated/annotation":         "x",
	})
	want := map[string]string{"automated": "true", "locked": "true", "tag.app": "semver:~1.0", "tag.sidecar": "glob:*"}
	if len(got) != len(want) {
		t.Fatalf("policies = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("policies[%s] = %q, want %q", k, got[k], v)
		}
	}
}

// A configured token is checked as fluxctl sends it, before any route.
func TestToken(t *testing.T) {
	s := &Server{Token: []byte("s3cret"), Version: "v"}
	for header, want := range map[string]int{
		"":                          http.StatusUnauthorized,
		"Scope-Probe token=wrong":   http.StatusUnauthorized,
		"Bearer s3cret":             http.StatusUnauthorized,
		"Scope-Probe token=s3cret":  http.StatusOK,
		"Scope-Probe token=s3cret ": http.StatusUnauthorized,
	} {
		req := httptest.NewRequest(http.MethodGet, "/v11/version", nil)
		if header != "" {
			req.Header.Set("Authorization", header)
		}
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if rec.Code != want {
			t.Errorf("Authorization %q: %d, want %d", header, rec.Code, want)
		}
		if strings.Contains(rec.Body.String(), "s3cret") {
			t.Errorf("the answer holds the token: %s", rec.Body)
		}
	}
}

// readRecorder is a request body that records whether it was read.
type readRecorder struct {
	r    *strings.Reader
	read bool
}

func (b *readRecorder) Read(p []byte) (int, error) { b.read = true; return b.r.Read(p) }
func (b *readRecorder) Close() error               { return nil }

// The token is checked before anything of the request is read: a POST
// without it is refused with its body unread.
func TestTokenIsCheckedBeforeTheBody(t *testing.T) {
	s := &Server{Token: []byte("s3cret")}
	for _, path := range []string{"/v9/update-manifests", "/v11/notify", "/v12/rollback", "/v9/git-repo-config"} {
		b := &readRecorder{r: strings.NewReader(`{"type":"sync"}`)}
		req := httptest.NewRequest(http.MethodPost, path, b)
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if rec.Code != http.StatusUnauthorized || b.read {
			t.Errorf("POST %s without the token: %d, body read %v; want 401, unread", path, rec.Code, b.read)
		}
	}
}

// The randomart is OpenSSH's 17×9 board in a frame with the key type and
// the hash named, S at the centre.
func TestRandomart(t *testing.T) {
	art := randomart(make([]byte, 32), "ssh-ed25519", 256, "SHA256")
	lines := strings.Split(art, "\n")
	if len(lines) != 11 || lines[0] != "+--[ED25519 256]--+" || lines[10] != "+----[SHA256]-----+" {
		t.Fatalf("randomart:\n%s", art)
	}
	for _, l := range lines[1:10] {
		if len(l) != 19 || l[0] != '|' || l[18] != '|' {
			t.Errorf("row %q is not 17 cells between bars", l)
		}
	}
	if lines[5][9] != 'S' {
		t.Errorf("the start is not at the centre:\n%s", art)
	}
}

func TestRequestBodyIsBounded(t *testing.T) {
	s := &Server{}
	req := httptest.NewRequest(http.MethodPost, "/v9/update-manifests", strings.NewReader(`{"type":"sync","spec":"`+strings.Repeat("x", maxBody)+`"}`))
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "does not parse") {
		t.Errorf("an oversized body: %d %s, want 400", rec.Code, rec.Body)
	}
}

// A cut subject or trailer never splits a character.
func TestOneLineKeepsCharactersWhole(t *testing.T) {
	got := oneLine(strings.Repeat("a", 199) + "é and more\nlines")
	if got != strings.Repeat("a", 199) || !utf8.ValidString(got) {
		t.Errorf("oneLine = %q", got)
	}
	if got := oneLine("two\nlines  here"); got != "two lines here" {
		t.Errorf("oneLine = %q", got)
	}
}

// A rollback's patch is a unified diff git applies: 3 lines of context,
// a/ b/ paths, and git's marker after a last line without a line break.
func TestUnifiedDiff(t *testing.T) {
	files := []update.File{
		{Path: "a.yaml", Data: []byte("1\n2\n3\n4\n5\n6\n7\n8\n9\n")},
		{Path: "b.yaml", Data: []byte("x: 1\ntag: 1.0.1")},
		{Path: "c.yaml", Data: []byte("same\n")},
	}
	got, err := unifiedDiff(files, map[string][]byte{
		"b.yaml": []byte("x: 1\ntag: 1.0.0"),
		"a.yaml": []byte("1\n2\n3\n4\nfive\n6\n7\n8\n9\n"),
	})
	want := "--- a/a.yaml\n+++ b/a.yaml\n@@ -2,7 +2,7 @@\n 2\n 3\n 4\n-5\n+five\n 6\n 7\n 8\n" +
		"--- a/b.yaml\n+++ b/b.yaml\n@@ -1,2 +1,2 @@\n x: 1\n-tag: 1.0.1\n\\ No newline at end of file\n+tag: 1.0.0\n\\ No newline at end of file\n"
	if err != nil || got != want {
		t.Errorf("unifiedDiff:\n%s\nwant\n%s (%v)", got, want, err)
	}
}

func TestCheckRollback(t *testing.T) {
	for _, ok := range []RollbackSpec{
		{Workload: "apps:deployment/web", Previous: true},
		{Workload: "apps:deployment/web", To: "0123abc"},
		{Workload: "apps:helmrelease/web", To: "0123456789ABCDEF0123456789abcdef01234567"},
	} {
		if _, err := checkRollback(ok); err != nil {
			t.Errorf("checkRollback(%+v): %v", ok, err)
		}
	}
	for _, bad := range []RollbackSpec{
		{Previous: true},
		{Workload: "apps/web", Previous: true},
		{Workload: "apps:deployment/web"},
		{Workload: "apps:deployment/web", Previous: true, To: "0123abc"},
		{Workload: "apps:deployment/web", To: "0123ab"},
		{Workload: "apps:deployment/web", To: "0123456789abcdef0123456789abcdef012345678"},
		{Workload: "apps:deployment/web", To: "main~1"},
	} {
		if _, err := checkRollback(bad); err == nil {
			t.Errorf("checkRollback(%+v) passed, want a 400", bad)
		}
	}
}

// TestCapPatch: a rollback's patch beyond maxPatch is cut at a line's end
// and says how much was left out; a small one is kept whole.
func TestCapPatch(t *testing.T) {
	small := "--- a/x\n+++ b/x\n-a\n+b\n"
	if got := capPatch(small); got != small {
		t.Errorf("a small patch changed: %q", got)
	}
	big := strings.Repeat("+"+strings.Repeat("v", 99)+"\n", 1000) // 100,000 bytes
	got := capPatch(big)
	if len(got) > maxPatch+100 || !strings.HasSuffix(got, " more bytes of the patch left out)\n") || !strings.HasPrefix(got, big[:maxPatch-100]) {
		t.Errorf("a %d-byte patch became %d bytes ending %q", len(big), len(got), got[len(got)-60:])
	}
}
