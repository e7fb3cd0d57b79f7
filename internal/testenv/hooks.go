package testenv

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"strings"
	"testing"
)

// PushHook sends a GitHub-style push notification, signed with token, to
// the push receiver at addr (host:port) for the GitSync ns/name, and
// returns the status.
func PushHook(t testing.TB, addr, ns, name, token string) int {
	t.Helper()
	body := `{"ref":"refs/heads/main"}`
	mac := hmac.New(sha256.New, []byte(token))
	mac.Write([]byte(body))
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/hooks/"+ns+"/"+name, strings.NewReader(body))
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
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}
