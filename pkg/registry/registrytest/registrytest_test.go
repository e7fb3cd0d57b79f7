package registrytest

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// reply is a response read whole.
type reply struct {
	StatusCode int
	Header     http.Header
	Body       []byte
}

func get(t *testing.T, s *Server, path string, user, pass string) reply {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.URL()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return reply{StatusCode: resp.StatusCode, Header: resp.Header, Body: body}
}

func TestPushBypassesLogAndFaults(t *testing.T) {
	s := NewServer(t, WithBasicAuth("u", "p"))
	s.Fail(func(*http.Request, int) (int, http.Header, string, bool) { return 500, nil, "", true })
	digest := s.Push(t, "app", "v1", time.Now())
	if !strings.HasPrefix(digest, "sha256:") {
		t.Errorf("digest = %q", digest)
	}
	s.PushTags(t, "app", "a", "b")
	if n := len(s.Requests()); n != 0 {
		t.Errorf("pushes logged %d requests, want 0", n)
	}
}

func TestFailNumbersRequestsAndResetRestarts(t *testing.T) {
	s := NewServer(t)
	var seen []int
	s.Fail(func(r *http.Request, n int) (int, http.Header, string, bool) {
		seen = append(seen, n)
		return http.StatusTooManyRequests, http.Header{"Retry-After": {"7"}}, "later", n == 2
	})
	if resp := get(t, s, "/v2/", "", ""); resp.StatusCode != 200 {
		t.Errorf("first request status %d, want the registry's 200", resp.StatusCode)
	}
	resp := get(t, s, "/v2/", "", "")
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "7" {
		t.Errorf("second request = %d %v, want the fault", resp.StatusCode, resp.Header)
	}
	s.Reset()
	get(t, s, "/v2/", "", "")
	if want := []int{1, 2, 1}; !slices.Equal(seen, want) {
		t.Errorf("request numbers %v, want %v", seen, want)
	}
	if reqs := s.Requests(); len(reqs) != 1 || reqs[0].Path != "/v2/" {
		t.Errorf("log after Reset = %v, want one request", reqs)
	}
}

func TestBasicAuth(t *testing.T) {
	s := NewServer(t, WithBasicAuth("u", "p"))
	if resp := get(t, s, "/v2/", "", ""); resp.StatusCode != 401 || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic") {
		t.Errorf("anonymous: %d %v, want a Basic challenge", resp.StatusCode, resp.Header)
	}
	if resp := get(t, s, "/v2/", "u", "wrong"); resp.StatusCode != 401 {
		t.Errorf("wrong password: %d, want 401", resp.StatusCode)
	}
	if resp := get(t, s, "/v2/", "u", "p"); resp.StatusCode != 200 {
		t.Errorf("right password: %d, want 200", resp.StatusCode)
	}
	reqs := s.Requests()
	if reqs[0].Authorization || !reqs[2].Authorization {
		t.Errorf("Authorization flags = %v", reqs)
	}
}

func TestTagListLinks(t *testing.T) {
	s := NewServer(t)
	s.PushTags(t, "app", "a", "b", "c")
	page := func(query string) ([]string, string) {
		t.Helper()
		resp := get(t, s, "/v2/app/tags/list"+query, "", "")
		var body struct{ Tags []string }
		if err := json.Unmarshal(resp.Body, &body); err != nil {
			t.Fatalf("%s: %v", resp.Body, err)
		}
		return body.Tags, resp.Header.Get("Link")
	}
	tags, link := page("?n=2")
	if strings.Join(tags, ",") != "a,b" || !strings.Contains(link, "last=b") || !strings.Contains(link, `rel="next"`) {
		t.Errorf("first page = %v, Link %q", tags, link)
	}
	tags, link = page("?n=2&last=b")
	if strings.Join(tags, ",") != "c" || link != "" {
		t.Errorf("second page = %v, Link %q; want [c] and no link", tags, link)
	}
	if tags, _ = page("?n=2&last=c"); len(tags) != 0 {
		t.Errorf("past the end = %v, want none", tags)
	}
}

func TestPlainHTTP(t *testing.T) {
	s := NewServer(t, WithPlainHTTP())
	if !strings.HasPrefix(s.URL(), "http://") || !strings.HasPrefix(s.Host(), "127.0.0.1:") {
		t.Fatalf("URL %s Host %s", s.URL(), s.Host())
	}
	if resp := get(t, s, "/v2/", "", ""); resp.StatusCode != 200 {
		t.Errorf("status %d", resp.StatusCode)
	}
}
