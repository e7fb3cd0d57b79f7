package main

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	"github.com/helmflux/helmflux/api/fluxd"
)

// TestTableAlignsColouredCells: a coloured cell takes the width of its
// text, not of its escape codes, so coloured and plain rows line up.
func TestTableAlignsColouredCells(t *testing.T) {
	var out bytes.Buffer
	s := style{on: true}
	tb := newTable(&out, false, "WORKLOAD", "STATUS", "POLICY")
	tb.row("ns:deployment/a", s.status("ready"), "automated")
	tb.row("ns:deployment/longer-name", "unknown", "locked")
	if err := tb.flush(); err != nil {
		t.Fatal(err)
	}
	var cols []int
	plain := strings.Split(strings.TrimSuffix(ansi.ReplaceAllString(out.String(), ""), "\n"), "\n")
	for i, word := range []string{"POLICY", "automated", "locked"} {
		cols = append(cols, strings.Index(plain[i], word))
	}
	if cols[0] != cols[1] || cols[1] != cols[2] {
		t.Errorf("the POLICY column, after a coloured STATUS, starts at %v, want one column:\n%s", cols, out.String())
	}
	if !strings.Contains(out.String(), "\x1b[32mready\x1b[0m") {
		t.Errorf("ready is not green on a terminal:\n%q", out.String())
	}
	if strings.Contains(out.String(), " \n") {
		t.Errorf("a line ends in spaces:\n%q", out.String())
	}
}

func TestSetFilter(t *testing.T) {
	for _, tc := range []struct {
		filter string
		add    map[string]string
		remove map[string]string
	}{
		{"1.*", map[string]string{"tag.app": "glob:1.*"}, map[string]string{}},
		{"semver:~1.4", map[string]string{"tag.app": "semver:~1.4"}, map[string]string{}},
		{"regexp:^v[0-9]+$", map[string]string{"tag.app": "regexp:^v[0-9]+$"}, map[string]string{}},
		{"*", map[string]string{}, map[string]string{"tag.app": "true"}},
		{"glob:*", map[string]string{}, map[string]string{"tag.app": "true"}},
	} {
		upd := newPolicyUpdate()
		setFilter(upd, "tag.app", tc.filter)
		if !reflect.DeepEqual(upd.Add, tc.add) || !reflect.DeepEqual(upd.Remove, tc.remove) {
			t.Errorf("setFilter(%q) = %+v, want add %v remove %v", tc.filter, upd, tc.add, tc.remove)
		}
	}
}

func TestQualify(t *testing.T) {
	for in, want := range map[string]string{
		"deployment/web":         "team:deployment/web",
		"HelmRelease/podinfo":    "team:HelmRelease/podinfo",
		"other:deployment/web":   "other:deployment/web",
		"team-b/web":             "team-b/web", // fluxd's legacy ns/name
		"<cluster>:namespace/ns": "<cluster>:namespace/ns",
	} {
		if got := qualify("team", in); got != want {
			t.Errorf("qualify(team, %q) = %q, want %q", in, got, want)
		}
	}
}

func TestImageRefParts(t *testing.T) {
	for ref, want := range map[string][2]string{
		"registry.example:5000/team/app:1.2.3": {"registry.example:5000/team/app", "1.2.3"},
		"registry.example:5000/team/app":       {"registry.example:5000/team/app", "registry.example:5000/team/app"},
		"app:latest":                           {"app", "latest"},
	} {
		if got := [2]string{repoPart(ref), tagPart(ref)}; got != want {
			t.Errorf("%q: repo and tag %q, want %q", ref, got, want)
		}
	}
}

// TestPick: an empty line or "all" releases every update of the plan,
// "none" nothing, numbers those; a number out of range is a usage error.
func TestPick(t *testing.T) {
	plan := fluxd.JobResult{Result: map[string]fluxd.WorkloadResult{
		"ns:deployment/b": {Status: fluxd.ResultSuccess, PerContainer: []fluxd.ContainerUpdate{{Container: "b", Current: "r/b:1", Target: "r/b:2"}}},
		"ns:deployment/a": {Status: fluxd.ResultSuccess, PerContainer: []fluxd.ContainerUpdate{{Container: "a", Current: "r/a:1", Target: "r/a:2"}}},
		"ns:deployment/c": {Status: fluxd.ResultSkipped},
	}}
	a := newApp(&bytes.Buffer{}, &bytes.Buffer{})
	for in, want := range map[string][]string{"\n": {"ns:deployment/a", "ns:deployment/b"}, "all\n": {"ns:deployment/a", "ns:deployment/b"},
		"2\n": {"ns:deployment/b"}, "none\n": nil} {
		got, err := a.pick(strings.NewReader(in), plan)
		if err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		var ids []string
		for _, id := range []string{"ns:deployment/a", "ns:deployment/b", "ns:deployment/c"} {
			if len(got[id]) > 0 {
				ids = append(ids, id)
			}
		}
		if !reflect.DeepEqual(ids, want) {
			t.Errorf("%q picked %v, want %v", in, ids, want)
		}
	}
	if _, err := a.pick(strings.NewReader("3\n"), plan); exitCode(err) != exitUsage {
		t.Errorf("3 of 2 choices: %v, want a usage error", err)
	}
}
