package automation

import (
	"errors"
	"strings"
	"testing"
	"time"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	helmfluxv1alpha1 "github.com/helmflux/helmflux/api/helmflux/v1alpha1"
	"github.com/helmflux/helmflux/operator/outcome"
	"github.com/helmflux/helmflux/pkg/git"
)

var someUpdate = helmfluxv1alpha1.ImageUpdate{
	Workload: "apps:deployment/web", Container: "web", Image: "ghcr.io/acme/web", From: "1.0.0", To: "1.0.1", File: "apps/web.yaml",
}

func TestSummarize(t *testing.T) {
	pushed := &git.Revision{Ref: "main", Hash: "0123456789abcdef0123456789abcdef01234567"}
	failure := helmfluxv1alpha1.ImageFailure{Workload: "apps:deployment/api", Container: "api", Message: "scan ghcr.io/acme/api: 500"}
	tests := []struct {
		name       string
		readOnly   bool
		plan       *plan
		pushed     *git.Revision
		err        error
		wantStatus metav1.ConditionStatus
		wantReason string
		wantMsg    string
		pending    int
	}{
		{name: "nothing to do", plan: &plan{automated: 2}, wantStatus: "True", wantReason: helmfluxv1alpha1.ImagesUpToDateReason, wantMsg: "2 automated images"},
		{name: "pushed", plan: &plan{automated: 1, updates: []helmfluxv1alpha1.ImageUpdate{someUpdate}}, pushed: pushed,
			wantStatus: "True", wantReason: helmfluxv1alpha1.ImagesUpdatedReason, wantMsg: "Committed 0123456 to main: ghcr.io/acme/web 1.0.0 → 1.0.1"},
		{name: "read only", readOnly: true, plan: &plan{automated: 1, updates: []helmfluxv1alpha1.ImageUpdate{someUpdate}},
			wantStatus: "True", wantReason: helmfluxv1alpha1.UpdatesPendingReason, wantMsg: "readOnly: would commit ghcr.io/acme/web", pending: 1},
		{name: "scan failures", plan: &plan{automated: 2, failures: []helmfluxv1alpha1.ImageFailure{failure, failure}},
			wantStatus: "False", wantReason: helmfluxv1alpha1.ScanFailedReason, wantMsg: "apps:deployment/api (api): scan ghcr.io/acme/api: 500 (and 1 more failures)"},
		{name: "lost every race", err: outcome.RetryAfter(helmfluxv1alpha1.AutomationFailedReason, time.Minute, git.ErrPushRejected),
			wantStatus: "False", wantReason: helmfluxv1alpha1.PushFailedReason, wantMsg: "push rejected"},
		{name: "fetch failed", err: outcome.RetryAfter(helmfluxv1alpha1.AutomationFailedReason, time.Minute, errors.New("fetch: connection refused")),
			wantStatus: "False", wantReason: helmfluxv1alpha1.AutomationFailedReason, wantMsg: "fetch: connection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obj := &helmfluxv1alpha1.GitSync{ObjectMeta: metav1.ObjectMeta{Generation: 3}}
			obj.Spec.ReadOnly = tt.readOnly
			summarize(obj, tt.plan, tt.pushed, tt.err)
			st := obj.Status.ImageAutomation
			c := apimeta.FindStatusCondition(st.Conditions, "Ready")
			if c == nil || c.Status != tt.wantStatus || c.Reason != tt.wantReason || !strings.HasPrefix(c.Message, tt.wantMsg) || c.ObservedGeneration != 3 {
				t.Fatalf("Ready = %+v, want %s %s %q", c, tt.wantStatus, tt.wantReason, tt.wantMsg)
			}
			if len(st.Pending) != tt.pending {
				t.Errorf("pending %v", st.Pending)
			}
			if (tt.pushed != nil) != (st.LastPushedCommit != "") {
				t.Errorf("lastPushedCommit %q", st.LastPushedCommit)
			}
		})
	}
}

func TestMessage(t *testing.T) {
	other := someUpdate
	other.Workload, other.File = "apps:helmrelease/web", "values/web.yaml"
	def, err := parseTemplate("")
	if err != nil {
		t.Fatal(err)
	}
	msg, err := message(def, []helmfluxv1alpha1.ImageUpdate{other, someUpdate}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := "Auto-release ghcr.io/acme/web:1.0.1\n\n" +
		"- apps:deployment/web (web): ghcr.io/acme/web 1.0.0 -> 1.0.1\n" +
		"- apps:helmrelease/web (web): ghcr.io/acme/web 1.0.0 -> 1.0.1\n\n" +
		"Helmflux-Image: ghcr.io/acme/web 1.0.0 -> 1.0.1\n" +
		"Helmflux-Workload: apps:deployment/web\n" +
		"Helmflux-Workload: apps:helmrelease/web\n"
	if msg != want {
		t.Fatalf("message:\n%s\nwant:\n%s", msg, want)
	}

	custom, err := parseTemplate("chore: bump {{ len .Updates }} image(s) in {{ index .Workloads 0 }}")
	if err != nil {
		t.Fatal(err)
	}
	msg, err = message(custom, []helmfluxv1alpha1.ImageUpdate{someUpdate}, nil)
	if err != nil || !strings.HasPrefix(msg, "chore: bump 1 image(s) in apps:deployment/web\n\nHelmflux-Image: ") {
		t.Fatalf("custom message %q, %v", msg, err)
	}

	for _, bad := range []string{"{{ .Nope }}", "{{ range .Updates }}", "   "} {
		tm, err := parseTemplate(bad)
		if err == nil {
			_, err = message(tm, []helmfluxv1alpha1.ImageUpdate{someUpdate}, nil)
		}
		if bad == "   " {
			if err != nil {
				t.Errorf("blank template should fall back to the default: %v", err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), "writeBack.messageTemplate") {
			t.Errorf("template %q: %v", bad, err)
		}
	}
	huge, _ := parseTemplate(`{{ range .Updates }}{{ printf "%070000d" 0 }}{{ end }}`)
	if _, err := message(huge, []helmfluxv1alpha1.ImageUpdate{someUpdate}, nil); !errors.Is(err, errMessageTooLong) {
		t.Errorf("a message over the size limit: err = %v, want errMessageTooLong", err)
	}
}

// A template that ranges over a number written in it would loop without
// writing anything, past the output cap: it is refused when parsed, with
// its line; ranges over the data, and nested ones, are fine.
func TestMessageTemplateRangesAreBounded(t *testing.T) {
	for _, tmpl := range []string{
		"{{ range 1000000000000 }}{{ end }}x",
		"Release\n{{ if .Images }}{{ range $i := 99999999999 }}{{ end }}{{ end }}",
		"{{ define \"loop\" }}{{ range 5000000000 }}{{ end }}{{ end }}{{ template \"loop\" }}",
	} {
		err := CheckMessageTemplate(tmpl)
		if err == nil || !strings.Contains(err.Error(), "range over a number") {
			t.Errorf("%q: %v, want a refusal of the range", tmpl, err)
		}
	}
	if err := CheckMessageTemplate("Release\n{{ if .Images }}{{ range $i := 99999999999 }}{{ end }}{{ end }}"); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("the refusal names no line 2: %v", err)
	}
	for _, tmpl := range []string{
		"{{ range .Images }}{{ . }} {{ end }}",
		"{{ range $i, $u := .Updates }}{{ range $.Workloads }}{{ . }}{{ end }}{{ end }}x",
	} {
		if err := CheckMessageTemplate(tmpl); err != nil {
			t.Errorf("%q: %v", tmpl, err)
		}
	}
}
