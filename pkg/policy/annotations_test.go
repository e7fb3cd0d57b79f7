package policy

import (
	"slices"
	"strings"
	"testing"
)

func TestFromAnnotationsFlags(t *testing.T) {
	tests := []struct {
		name string
		ann  map[string]string
		want Policy
	}{
		{name: "no annotations", ann: nil, want: Policy{}},
		{
			name: "current prefix",
			ann: map[string]string{
				"fluxcd.io/automated": "true", "fluxcd.io/locked": "true",
				"fluxcd.io/locked_msg": "incident 42", "fluxcd.io/locked_user": "ann",
				"fluxcd.io/ignore": "true",
			},
			want: Policy{Automated: true, Locked: true, LockedMsg: "incident 42", LockedUser: "ann", Ignored: true},
		},
		{
			name: "legacy prefix",
			ann: map[string]string{
				"flux.weave.works/automated": "true", "flux.weave.works/locked": "true",
				"flux.weave.works/locked_msg": "old", "flux.weave.works/locked_user": "bob",
				"flux.weave.works/ignore": "true",
			},
			want: Policy{Automated: true, Locked: true, LockedMsg: "old", LockedUser: "bob", Ignored: true},
		},
		{
			name: "current prefix wins over legacy, even when false",
			ann: map[string]string{
				"fluxcd.io/automated": "false", "flux.weave.works/automated": "true",
				"fluxcd.io/locked": "true", "flux.weave.works/locked": "false",
				"fluxcd.io/locked_msg": "new", "flux.weave.works/locked_msg": "old",
				"fluxcd.io/locked_user": "", "flux.weave.works/locked_user": "bob",
			},
			want: Policy{Locked: true, LockedMsg: "new"},
		},
		{
			name: "booleans are true only for the exact string true",
			ann: map[string]string{
				"fluxcd.io/automated": "True", "fluxcd.io/locked": "yes", "fluxcd.io/ignore": " true",
			},
			want: Policy{},
		},
		{
			name: "ignore sync_only does not ignore automation",
			ann:  map[string]string{"fluxcd.io/ignore": "sync_only", "fluxcd.io/automated": "true"},
			want: Policy{Automated: true},
		},
		{
			name: "other domains are not read",
			ann:  map[string]string{"example.com/automated": "true", "fluxcd.io/automated.x": "true", "helm.fluxcd.io/locked": "true"},
			want: Policy{},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := FromAnnotations(tc.ann)
			got.containers = nil
			if got.Automated != tc.want.Automated || got.Locked != tc.want.Locked || got.LockedMsg != tc.want.LockedMsg ||
				got.LockedUser != tc.want.LockedUser || got.Ignored != tc.want.Ignored {
				t.Errorf("FromAnnotations = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestContainer(t *testing.T) {
	tests := []struct {
		name      string
		ann       map[string]string
		container string
		filter    string // want Filter.String()
		order     Order
		asc       bool
		extract   string
	}{
		{name: "no annotation is glob:* by time", container: "app", filter: "glob:*", order: OrderTime},
		{
			name:      "another container's annotation does not apply",
			ann:       map[string]string{"fluxcd.io/tag.other": "semver:^1"},
			container: "app", filter: "glob:*", order: OrderTime,
		},
		{
			name:      "legacy tag annotation",
			ann:       map[string]string{"flux.weave.works/tag.app": "semver:~1.2"},
			container: "app", filter: "semver:~1.2", order: OrderSemver,
		},
		{
			name:      "current tag annotation wins over legacy",
			ann:       map[string]string{"flux.weave.works/tag.app": "semver:~1.2", "fluxcd.io/tag.app": "glob:1.*"},
			container: "app", filter: "glob:1.*", order: OrderTime,
		},
		{
			name: "filter annotation wins over both tag annotations",
			ann: map[string]string{
				"flux.weave.works/tag.app": "semver:~1.2", "fluxcd.io/tag.app": "glob:1.*",
				"filter.fluxcd.io/app": "regexp:^v",
			},
			container: "app", filter: "regex:^v", order: OrderTime,
		},
		{
			name:      "filter annotation wins over legacy alone",
			ann:       map[string]string{"flux.weave.works/tag.app": "semver:~1.2", "filter.fluxcd.io/app": "main-*"},
			container: "app", filter: "glob:main-*", order: OrderTime,
		},
		{
			name:      "HelmRelease chart-image",
			ann:       map[string]string{"fluxcd.io/tag.chart-image": "semver:>=2"},
			container: "chart-image", filter: "semver:>=2", order: OrderSemver,
		},
		{
			name:      "semver order on a glob filter",
			ann:       map[string]string{"fluxcd.io/tag.app": "*", "order.helmflux.dev/app": "semver"},
			container: "app", filter: "glob:*", order: OrderSemver,
		},
		{
			name:      "time order on a semver filter",
			ann:       map[string]string{"fluxcd.io/tag.app": "semver:^1", "order.helmflux.dev/app": " time "},
			container: "app", filter: "semver:^1", order: OrderTime,
		},
		{
			name: "numeric ascending with extract",
			ann: map[string]string{
				"fluxcd.io/tag.app": `regex:^main-(?P<ts>\d+)$`, "order.helmflux.dev/app": "numeric:asc",
				"extract.helmflux.dev/app": "$ts",
			},
			container: "app", filter: `regex:^main-(?P<ts>\d+)$`, order: OrderNumeric, asc: true, extract: "$ts",
		},
		{
			name: "alphabetical descending with a numbered group",
			ann: map[string]string{
				"filter.fluxcd.io/app": `regex:^b-(\d+)-(\w+)$`, "order.helmflux.dev/app": "alphabetical:desc",
				"extract.helmflux.dev/app": "${2}$1",
			},
			container: "app", filter: `regex:^b-(\d+)-(\w+)$`, order: OrderAlphabetical, extract: "${2}$1",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Map iteration order varies between runs; precedence must not.
			for range 50 {
				got, err := FromAnnotations(tc.ann).Container(tc.container)
				if err != nil {
					t.Fatalf("Container: %v", err)
				}
				if got.Filter.String() != tc.filter || got.Order != tc.order || got.Ascending != tc.asc || got.Extract != tc.extract {
					t.Fatalf("Container = {%s %s asc=%v %q}, want {%s %s asc=%v %q}",
						got.Filter, got.Order, got.Ascending, got.Extract, tc.filter, tc.order, tc.asc, tc.extract)
				}
			}
		})
	}
}

func TestContainerErrors(t *testing.T) {
	tests := []struct {
		name string
		ann  map[string]string
		key  string // the annotation key the error must name
		msg  string // and what it must say
	}{
		{"empty filter", map[string]string{"fluxcd.io/tag.app": " "}, "fluxcd.io/tag.app", "empty filter"},
		{"bad regex", map[string]string{"filter.fluxcd.io/app": "regex:("}, "filter.fluxcd.io/app", "missing closing )"},
		{"bad semver range", map[string]string{"flux.weave.works/tag.app": "semver:~one"}, "flux.weave.works/tag.app", "semver filter"},
		{"bad glob", map[string]string{"fluxcd.io/tag.app": "glob:[a-"}, "fluxcd.io/tag.app", "character class"},
		{"unknown filter kind", map[string]string{"fluxcd.io/tag.app": "semvr:~1"}, "fluxcd.io/tag.app", `unknown filter kind "semvr"`},
		{"filter key wins even when invalid", map[string]string{"fluxcd.io/tag.app": "*", "filter.fluxcd.io/app": "regex:["}, "filter.fluxcd.io/app", "regex filter"},
		{"unknown order", map[string]string{"order.helmflux.dev/app": "newest"}, "order.helmflux.dev/app", `unknown order "newest"`},
		{"empty order", map[string]string{"order.helmflux.dev/app": ""}, "order.helmflux.dev/app", "unknown order"},
		{"direction on semver", map[string]string{"order.helmflux.dev/app": "semver:asc"}, "order.helmflux.dev/app", "takes no direction"},
		{"direction on time", map[string]string{"order.helmflux.dev/app": "time:desc"}, "order.helmflux.dev/app", "takes no direction"},
		{"unknown direction", map[string]string{"order.helmflux.dev/app": "numeric:up"}, "order.helmflux.dev/app", `unknown direction "up"`},
		{
			"extract with a glob filter",
			map[string]string{"order.helmflux.dev/app": "numeric", "extract.helmflux.dev/app": "$1"},
			"extract.helmflux.dev/app", "needs a regex filter",
		},
		{
			"extract with a semver filter",
			map[string]string{"fluxcd.io/tag.app": "semver:^1", "order.helmflux.dev/app": "alphabetical", "extract.helmflux.dev/app": "$1"},
			"extract.helmflux.dev/app", "needs a regex filter",
		},
		{
			"extract with time order",
			map[string]string{"fluxcd.io/tag.app": `regex:(\d+)`, "extract.helmflux.dev/app": "$1"},
			"extract.helmflux.dev/app", "not time",
		},
		{
			"extract naming an unknown group",
			map[string]string{"fluxcd.io/tag.app": `regex:(?P<ts>\d+)`, "order.helmflux.dev/app": "numeric", "extract.helmflux.dev/app": "$tss"},
			"extract.helmflux.dev/app", `no group named "tss"`,
		},
		{
			"extract with $1x, which Expand reads as group 1x",
			map[string]string{"fluxcd.io/tag.app": `regex:(\d+)`, "order.helmflux.dev/app": "numeric", "extract.helmflux.dev/app": "$1x"},
			"extract.helmflux.dev/app", `no group named "1x"`,
		},
		{
			"extract naming a group number the regex lacks",
			map[string]string{"fluxcd.io/tag.app": `regex:(\d+)`, "order.helmflux.dev/app": "numeric", "extract.helmflux.dev/app": "${2}"},
			"extract.helmflux.dev/app", "no group 2",
		},
		{
			"extract without a reference",
			map[string]string{"fluxcd.io/tag.app": `regex:(\d+)`, "order.helmflux.dev/app": "numeric", "extract.helmflux.dev/app": "1$$"},
			"extract.helmflux.dev/app", "names no group",
		},
		{
			"extract with a malformed reference",
			map[string]string{"fluxcd.io/tag.app": `regex:(\d+)`, "order.helmflux.dev/app": "numeric", "extract.helmflux.dev/app": "${1"},
			"extract.helmflux.dev/app", "must be followed by a group name",
		},
		{
			"empty extract",
			map[string]string{"fluxcd.io/tag.app": `regex:(\d+)`, "order.helmflux.dev/app": "numeric", "extract.helmflux.dev/app": ""},
			"extract.helmflux.dev/app", "empty extract",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := FromAnnotations(tc.ann)
			got, err := p.Container("app")
			if err == nil {
				t.Fatalf("Container = %+v, want error", got)
			}
			if !strings.Contains(err.Error(), tc.key) || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q does not name %s and say %q", err, tc.key, tc.msg)
			}
			// The error concerns this container only.
			if _, err := p.Container("other"); err != nil {
				t.Errorf("Container(other): %v", err)
			}
		})
	}
}

func TestContainers(t *testing.T) {
	tests := []struct {
		name string
		ann  map[string]string
		want []string
	}{
		{"none", map[string]string{"fluxcd.io/automated": "true"}, []string{}},
		{
			"every per-container source, sorted and unique",
			map[string]string{
				"fluxcd.io/tag.web":            "*",
				"flux.weave.works/tag.web":     "*",
				"filter.fluxcd.io/chart-image": "semver:^1",
				"flux.weave.works/tag.legacy":  "*",
				"order.helmflux.dev/ord":       "numeric",
				"extract.helmflux.dev/ext":     "$1",
				"fluxcd.io/locked":             "true",
			},
			[]string{"chart-image", "ext", "legacy", "ord", "web"},
		},
		{
			"empty container names are not containers",
			map[string]string{"fluxcd.io/tag.": "*", "filter.fluxcd.io/": "*", "order.helmflux.dev/": "time"},
			[]string{},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := FromAnnotations(tc.ann).Containers(); !slices.Equal(got, tc.want) {
				t.Errorf("Containers = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestContainerDrivesDecide checks the path a caller takes, annotations to
// decision, for the regex-with-timestamp policy the order annotations exist
// for.
func TestContainerDrivesDecide(t *testing.T) {
	p := FromAnnotations(map[string]string{
		"fluxcd.io/automated":      "true",
		"fluxcd.io/tag.app":        `regex:^main-[0-9a-f]{7}-(?P<ts>\d+)$`,
		"order.helmflux.dev/app":   "numeric",
		"extract.helmflux.dev/app": "$ts",
	})
	c, err := p.Container("app")
	if err != nil {
		t.Fatal(err)
	}
	if c.NeedsCreated() {
		t.Error("numeric order should not need creation times")
	}
	d, err := Decide(c, "main-abc1234-1700000000000", complete(names(
		"main-abc1234-1700000000000", "main-def5678-1700000000999", "main-0000000-999999999999", "latest", "dev-1234567-1800000000000",
	)...))
	if err != nil {
		t.Fatal(err)
	}
	if !d.Changed || d.Tag != "main-def5678-1700000000999" {
		t.Errorf("Decide = %+v, want main-def5678-1700000000999", d)
	}
}
