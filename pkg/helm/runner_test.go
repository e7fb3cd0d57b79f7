package helm

import (
	"testing"

	"github.com/go-logr/logr"
	"k8s.io/client-go/rest"
)

// A Runner from As impersonates its user in every request (its config is
// what Helm's clients, its storage and lookup are built from), shares the
// discovery of the Runner it came from, and leaves that one as it was.
func TestAsImpersonates(t *testing.T) {
	base, err := NewRunner(&rest.Config{Host: "https://127.0.0.1:1"}, logr.Discard())
	if err != nil {
		t.Fatal(err)
	}
	const user = "system:serviceaccount:team-a:deployer"
	as, err := base.As(user)
	if err != nil {
		t.Fatal(err)
	}
	for name, cfg := range map[string]*rest.Config{"Config": as.Config(), "strict": as.strict, "lenient": as.lenient} {
		if got := cfg.Impersonate.UserName; got != user {
			t.Errorf("%s impersonates %q, want %q", name, got, user)
		}
	}
	if as.User() != user || as.cluster != base.cluster {
		t.Errorf("As: user %q, shared discovery %v", as.User(), as.cluster == base.cluster)
	}
	if got := base.Config().Impersonate.UserName; got != "" || base.User() != "" {
		t.Errorf("the base Runner impersonates %q after As", got)
	}
	// As of an impersonating Runner impersonates the new user only.
	again, err := as.As("system:serviceaccount:team-b:deployer")
	if err != nil {
		t.Fatal(err)
	}
	if got := again.Config().Impersonate.UserName; got != "system:serviceaccount:team-b:deployer" {
		t.Errorf("As of As impersonates %q", got)
	}
}
