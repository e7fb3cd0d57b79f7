package registry

import (
	"net/http"
	"net/url"
	"testing"
)

// A public registry may not redirect the operator into a private network
// (the metadata address, in-cluster services); a registry that is itself
// on one may redirect within it.
func TestRedirectsIntoPrivateNetworksAreRefused(t *testing.T) {
	req := func(raw string) *http.Request {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		return &http.Request{URL: u}
	}
	for _, tc := range []struct {
		from, to string
		refused  bool
	}{
		{"https://registry.example.com/v2/", "http://169.254.169.254/latest/meta-data", true},
		{"https://registry.example.com/v2/", "http://10.0.0.7:5000/v2/", true},
		{"https://registry.example.com/v2/", "http://[fe80::1]/v2/", true},
		{"https://registry.example.com/v2/", "http://0.0.0.0/v2/", true},
		{"https://registry.example.com/v2/", "https://cdn.example.net/blob", false},
		{"http://10.0.0.5:5000/v2/", "http://10.0.0.6:5000/v2/", false},
	} {
		err := checkRedirect(req(tc.to), []*http.Request{req(tc.from)})
		if (err != nil) != tc.refused {
			t.Errorf("%s -> %s: %v, want refused %t", tc.from, tc.to, err, tc.refused)
		}
	}
}
