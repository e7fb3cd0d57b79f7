package main

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/labels"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/helmflux/helmflux/operator/controllers"
)

func TestWatchLabelSelector(t *testing.T) {
	shard := labels.Set{"sharding.fluxcd.io/key": "shard1"}
	other := labels.Set{"sharding.fluxcd.io/key": "shard2"}
	none := labels.Set{"app": "web"}
	for _, tc := range []struct {
		flag    string
		matches []labels.Set
		misses  []labels.Set
		lease   string // "" for a derived name other than the default
	}{
		{flag: "", matches: []labels.Set{shard, other, none}, lease: controllers.LeaderElectionID},
		{flag: "sharding.fluxcd.io/key in (shard1)", matches: []labels.Set{shard}, misses: []labels.Set{other, none}},
		{flag: "sharding.fluxcd.io/key=shard1", matches: []labels.Set{shard}, misses: []labels.Set{other, none}},
		{flag: "!sharding.fluxcd.io/key", matches: []labels.Set{none}, misses: []labels.Set{shard, other}},
	} {
		t.Run(tc.flag, func(t *testing.T) {
			sel, err := watchLabelSelector(tc.flag)
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range tc.matches {
				if !sel.Matches(l) {
					t.Errorf("%q does not match %v", tc.flag, l)
				}
			}
			for _, l := range tc.misses {
				if sel.Matches(l) {
					t.Errorf("%q matches %v", tc.flag, l)
				}
			}
			lease := controllers.LeaseName(sel)
			if tc.lease != "" && lease != tc.lease {
				t.Errorf("Lease %q, want %q", lease, tc.lease)
			}
			if tc.lease == "" && !strings.HasPrefix(lease, controllers.LeaderElectionID+"-") {
				t.Errorf("Lease %q, want %s-<suffix>", lease, controllers.LeaderElectionID)
			}
		})
	}

	// Two shards never share a Lease, nor one with the main instance; the
	// same selector written twice is one shard.
	names := map[string]string{}
	for _, f := range []string{"", "sharding.fluxcd.io/key in (shard1)", "sharding.fluxcd.io/key in (shard2)", "!sharding.fluxcd.io/key"} {
		sel, _ := watchLabelSelector(f)
		n := controllers.LeaseName(sel)
		if prev, ok := names[n]; ok {
			t.Errorf("%q and %q share the Lease %s", prev, f, n)
		}
		names[n] = f
	}
	a, _ := watchLabelSelector("sharding.fluxcd.io/key in (shard1)")
	b, _ := watchLabelSelector("sharding.fluxcd.io/key  in  ( shard1 )")
	if controllers.LeaseName(a) != controllers.LeaseName(b) {
		t.Errorf("one shard written twice has two Leases: %s, %s", controllers.LeaseName(a), controllers.LeaseName(b))
	}

	for _, bad := range []string{"sharding.fluxcd.io/key in (", "a b", "=x", "key in (a,,b"} {
		if _, err := watchLabelSelector(bad); err == nil || !strings.Contains(err.Error(), "--watch-label-selector") {
			t.Errorf("%q: error %v, want one naming the flag", bad, err)
		}
	}
}

func TestLeaderElectionID(t *testing.T) {
	sel, err := watchLabelSelector("sharding.fluxcd.io/key in (a)")
	if err != nil {
		t.Fatal(err)
	}
	o := controllers.Shard(ctrl.Options{LeaderElectionID: controllers.LeaderElectionID}, sel)
	if o.LeaderElectionID != controllers.LeaseName(sel) {
		t.Errorf("a shard's Lease is %q, want %q", o.LeaderElectionID, controllers.LeaseName(sel))
	}
	if err := leaseIDFlag(&o, ""); err != nil || o.LeaderElectionID != controllers.LeaseName(sel) {
		t.Errorf("no --leader-election-id changed the Lease to %q (%v)", o.LeaderElectionID, err)
	}
	if err := leaseIDFlag(&o, controllers.LeaderElectionID); err != nil || o.LeaderElectionID != controllers.LeaderElectionID {
		t.Errorf("--leader-election-id=%s gives the Lease %q (%v)", controllers.LeaderElectionID, o.LeaderElectionID, err)
	}
	if err := leaseIDFlag(&o, "Not_A/Name"); err == nil || !strings.Contains(err.Error(), "--leader-election-id") {
		t.Errorf("an invalid --leader-election-id: error %v, want one naming the flag", err)
	}
}
