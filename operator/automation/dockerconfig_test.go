package automation

import (
	"context"
	"fmt"
	"testing"

	"github.com/helmflux/helmflux/pkg/registry"
	"github.com/helmflux/helmflux/pkg/registry/registrytest"
)

// TestSharedDockerConfig: the operator-wide logins reach a private
// repository for workloads of GitSyncs in every namespace by default, and
// only in the operator's own namespace with --shared-docker-config=false
// (DockerConfigNamespace); elsewhere the registry is asked anonymously and
// refuses.
func TestSharedDockerConfig(t *testing.T) {
	srv := registrytest.NewServer(t, registrytest.WithBasicAuth("robot", "canary-Docker-71c2"))
	srv.PushTags(t, "private", "v1")
	docker, err := registry.ParseDockerConfig([]byte(fmt.Sprintf(`{"auths":{%q:{"username":"robot","password":"canary-Docker-71c2"}}}`, srv.Host())))
	if err != nil {
		t.Fatal(err)
	}
	reg, err := registry.New(registry.Options{Transport: srv.Transport(), TagTTL: -1})
	if err != nil {
		t.Fatal(err)
	}
	const own = "helmflux-system"
	for _, tt := range []struct {
		name, dockerNamespace, gitSyncNamespace string
		want                                    bool
	}{
		{"shared, tenant", "", "tenant-a", true},
		{"own namespace only, own", own, own, true},
		{"own namespace only, tenant", own, "tenant-a", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := &Reconciler{DockerConfig: docker, DockerConfigNamespace: tt.dockerNamespace}
			cr := newCredentials(nil, r.dockerConfigFor(tt.gitSyncNamespace), "")
			creds, errs := cr.forWorkload(context.Background(), pullConfig{namespace: tt.gitSyncNamespace})
			if len(errs) > 0 {
				t.Fatal(errs)
			}
			res, err := reg.Scan(context.Background(), srv.Host()+"/private", registry.ScanOptions{Credentials: creds})
			if got := err == nil && len(res.Tags) == 1; got != tt.want {
				t.Errorf("scanned with the operator's login = %v (err %v), want %v", got, err, tt.want)
			}
		})
	}
}
