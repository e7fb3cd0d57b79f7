package history

import (
	"strings"
	"testing"
	"time"

	"github.com/helmflux/helmflux/pkg/git"
)

// auto is an automation commit as message() writes its trailers.
func auto(hash, message string) git.LogEntry {
	c := git.LogEntry{Hash: hash, Time: time.Unix(1700000000, 0)}
	_, block, _ := strings.Cut(message, "\n\n")
	for _, line := range strings.Split(strings.TrimSpace(block), "\n") {
		k, v, _ := strings.Cut(line, ": ")
		c.Trailers = append(c.Trailers, git.Trailer{Key: k, Value: v})
	}
	return c
}

func TestLastWritten(t *testing.T) {
	web := Key{Workload: "apps:deployment/web", Repository: "reg/web"}
	api := Key{Workload: "apps:deployment/api", Repository: "reg/api"}
	both := Key{Workload: "apps:deployment/web", Repository: "reg/api"}
	history := []git.LogEntry{
		{Hash: "h5", Subject: "a person's revert"},
		auto("h4", "x\n\nHelmflux-Quarantine: reg/api 2.0.1\nHelmflux-Image: reg/api 2.0.1 -> 2.0.0\nHelmflux-Workload: apps:deployment/api"),
		auto("h3", "x\n\nHelmflux-Image: reg/web 1.0.0 -> 1.0.1\nHelmflux-Workload: apps:deployment/web"),
		auto("h2", "x\n\nHelmflux-Image: reg/web <none> -> 0.9\nHelmflux-Image: reg/api 2.0.0 -> 2.0.1\nHelmflux-Workload: apps:deployment/api\nHelmflux-Workload: apps:deployment/web"),
	}
	got := LastWritten(history, []Key{web, api, both})
	if w := got[web]; w.Tag != "1.0.1" || w.From != "1.0.0" || w.Quarantine || w.Commit.Hash != "h3" {
		t.Errorf("web: %+v, want 1.0.0 -> 1.0.1 from h3", w)
	}
	if w := got[api]; w.Tag != "2.0.1" || !w.Quarantine || w.Commit.Hash != "h4" {
		t.Errorf("api: %+v, want the quarantine of 2.0.1 in h4", w)
	}
	// h2 names web's workload and api's repository: taken at its word.
	if w := got[both]; w.Tag != "2.0.1" || w.Commit.Hash != "h2" {
		t.Errorf("web's api container: %+v, want 2.0.1 from h2", w)
	}
}

func TestLastWrittenIgnoresWhatDoesNotParse(t *testing.T) {
	k := Key{Workload: "apps:deployment/web", Repository: "reg/web"}
	for name, c := range map[string]git.LogEntry{
		"no workload":        auto("h", "x\n\nHelmflux-Image: reg/web 1.0.0 -> 1.0.1"),
		"other workload":     auto("h", "x\n\nHelmflux-Image: reg/web 1.0.0 -> 1.0.1\nHelmflux-Workload: apps:deployment/other"),
		"no arrow":           auto("h", "x\n\nHelmflux-Image: reg/web 1.0.0 1.0.1\nHelmflux-Workload: apps:deployment/web"),
		"extra words":        auto("h", "x\n\nHelmflux-Image: reg/web 1.0.0 -> 1.0.1 now\nHelmflux-Workload: apps:deployment/web"),
		"two targets":        auto("h", "x\n\nHelmflux-Image: reg/web 1.0.0 -> 1.0.1\nHelmflux-Image: reg/web 1.0.0 -> 1.0.2\nHelmflux-Workload: apps:deployment/web"),
		"quarantine no tag":  auto("h", "x\n\nHelmflux-Quarantine: reg/web\nHelmflux-Workload: apps:deployment/web"),
		"workload two words": auto("h", "x\n\nHelmflux-Image: reg/web 1.0.0 -> 1.0.1\nHelmflux-Workload: apps:deployment/web x"),
	} {
		if w, ok := LastWritten([]git.LogEntry{c}, []Key{k})[k]; ok {
			t.Errorf("%s: %+v, want no hold known", name, w)
		}
	}
	// An ambiguous newest commit hides older ones: no hold rather than a stale one.
	older := auto("h1", "x\n\nHelmflux-Image: reg/web 1.0.0 -> 1.0.1\nHelmflux-Workload: apps:deployment/web")
	ambiguous := auto("h2", "x\n\nHelmflux-Image: reg/web 1.0.1 -> 1.0.2\nHelmflux-Image: reg/web 1.0.0 -> 1.0.3\nHelmflux-Workload: apps:deployment/web")
	if w, ok := LastWritten([]git.LogEntry{ambiguous, older}, []Key{k})[k]; ok {
		t.Errorf("ambiguous newest commit: %+v, want no hold known", w)
	}
}
