package automation

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"strings"
	"text/template"
	"text/template/parse"

	helmfluxv1alpha1 "github.com/helmflux/helmflux/api/helmflux/v1alpha1"
	"github.com/helmflux/helmflux/pkg/history"
)

// DefaultMessageTemplate is the commit message when writeBack.messageTemplate
// is unset, in the words Flux v1 used ("Auto-release ...").
const DefaultMessageTemplate = `{{ if eq (len .Images) 1 }}Auto-release {{ index .Images 0 }}{{ else }}Auto-release multiple ({{ len .Images }}) images{{ end }}

{{ range .Updates }}- {{ .Workload }} ({{ .Container }}): {{ .Image }} {{ .From }} -> {{ .To }}
{{ end }}`

// Trailer keys appended to every automation commit, one line per change, so
// tools (and people running git log --grep) can find what a commit did.
const (
	ImageTrailer      = history.ImageTrailer
	WorkloadTrailer   = history.WorkloadTrailer
	QuarantineTrailer = history.QuarantineTrailer
)

// maxMessage bounds a rendered commit message.
const maxMessage = 64 << 10

// errMessageTooLong is what a template that renders more than maxMessage
// bytes fails with.
var errMessageTooLong = fmt.Errorf("message longer than %d bytes", maxMessage)

// MessageData is what a message template sees.
type MessageData struct {
	// Updates are the changes, sorted by workload, container and file.
	Updates []helmfluxv1alpha1.ImageUpdate
	// Images are the new references ("repo:tag"), distinct and sorted.
	Images []string
	// Workloads are the workloads changed, distinct and sorted.
	Workloads []string
}

// parseTemplate checks a message template once per pass, so a broken
// template is reported before any registry is asked.
func parseTemplate(text string) (*template.Template, error) {
	if strings.TrimSpace(text) == "" {
		text = DefaultMessageTemplate
	}
	t, err := template.New("message").Option("missingkey=error").Parse(text)
	if err != nil {
		return nil, fmt.Errorf("writeBack.messageTemplate: %w", err)
	}
	for _, tt := range t.Templates() {
		if tt.Tree == nil {
			continue
		}
		if err := boundedRanges(tt.Root, text); err != nil {
			return nil, fmt.Errorf("writeBack.messageTemplate: %w", err)
		}
	}
	return t, nil
}

// boundedRanges refuses a range over a number written in the template
// ({{ range 1000000000000 }}): the output cap does not stop a loop that
// writes nothing, and such a template would hold the pass forever. The
// data a template ranges over (.Updates, .Images, .Workloads) is bounded
// by the repository; recursion is bounded by text/template itself.
func boundedRanges(n parse.Node, text string) error {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return nil
		}
		for _, c := range n.Nodes {
			if err := boundedRanges(c, text); err != nil {
				return err
			}
		}
	case *parse.RangeNode:
		for _, cmd := range n.Pipe.Cmds {
			for _, arg := range cmd.Args {
				if _, ok := arg.(*parse.NumberNode); ok {
					line := 1 + strings.Count(text[:min(int(n.Position()), len(text))], "\n")
					return fmt.Errorf("line %d: range over a number (%s) is not allowed: range over .Updates, .Images or .Workloads", line, arg)
				}
			}
		}
		return errors.Join(boundedRanges(n.List, text), boundedRanges(n.ElseList, text))
	case *parse.IfNode:
		return errors.Join(boundedRanges(n.List, text), boundedRanges(n.ElseList, text))
	case *parse.WithNode:
		return errors.Join(boundedRanges(n.List, text), boundedRanges(n.ElseList, text))
	}
	return nil
}

// CheckMessageTemplate parses text, a writeBack.messageTemplate, and renders
// it for one made-up update, so that a template that parses but fails on
// real data (a field that does not exist, .Ref on the strings of .Images)
// is found before a pass needs it: by the docs and samples tests, and by
// anyone who wants to check one.
func CheckMessageTemplate(text string) error {
	t, err := parseTemplate(text)
	if err != nil {
		return err
	}
	_, err = message(t, []helmfluxv1alpha1.ImageUpdate{{
		Workload: "apps:deployment/web", Container: "web", Image: "example.com/apps/web",
		From: "1.0.0", To: "1.0.1", File: "apps/web.yaml",
	}}, nil)
	return err
}

// message renders the commit message for updates and appends the
// trailers. Quarantines (also in updates) come first, in helmflux's own
// words rather than the template's, so that a person reading git log sees
// at once that a tag was taken back and why; the template renders the
// other updates.
func message(t *template.Template, updates []helmfluxv1alpha1.ImageUpdate, quarantines []quarantine) (string, error) {
	data := messageData(updates)
	var parts []string
	if len(quarantines) > 0 {
		parts = append(parts, quarantineText(quarantines))
	}
	if rest := withoutQuarantines(updates, quarantines); len(rest) > 0 {
		var b bytes.Buffer
		if err := t.Execute(&limitedWriter{w: &b, left: maxMessage}, messageData(rest)); err != nil {
			return "", fmt.Errorf("writeBack.messageTemplate: %w", err)
		}
		body := strings.TrimRight(b.String(), " \n\t")
		if body == "" {
			return "", fmt.Errorf("writeBack.messageTemplate rendered an empty message")
		}
		parts = append(parts, body)
	}
	return strings.Join(parts, "\n\n") + "\n\n" + quarantineTrailers(quarantines) + trailers(data), nil
}

// quarantineText is the subject and body of a quarantine.
func quarantineText(qs []quarantine) string {
	var b strings.Builder
	if len(qs) == 1 {
		fmt.Fprintf(&b, "Quarantine %s:%s", qs[0].update.Image, qs[0].update.From)
	} else {
		fmt.Fprintf(&b, "Quarantine %d images", len(qs))
	}
	b.WriteString("\n")
	for _, q := range qs {
		u := q.update
		fmt.Fprintf(&b, "\n- %s (%s): %s %s -> %s: %s", u.Workload, u.Container, u.Image, u.From, u.To, oneLine(q.reason))
	}
	return b.String()
}

func quarantineTrailers(qs []quarantine) string {
	seen := map[string]bool{}
	var b strings.Builder
	for _, q := range qs {
		line := fmt.Sprintf("%s: %s %s\n", QuarantineTrailer, q.update.Image, q.update.From)
		if !seen[line] {
			seen[line] = true
			b.WriteString(line)
		}
	}
	return b.String()
}

func withoutQuarantines(updates []helmfluxv1alpha1.ImageUpdate, qs []quarantine) []helmfluxv1alpha1.ImageUpdate {
	if len(qs) == 0 {
		return updates
	}
	q := map[helmfluxv1alpha1.ImageUpdate]bool{}
	for _, x := range qs {
		q[x.update] = true
	}
	var out []helmfluxv1alpha1.ImageUpdate
	for _, u := range updates {
		if !q[u] {
			out = append(out, u)
		}
	}
	return out
}

// oneLine keeps a reason on one bounded line.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	return trimMessage(s)
}

func messageData(updates []helmfluxv1alpha1.ImageUpdate) MessageData {
	d := MessageData{Updates: append([]helmfluxv1alpha1.ImageUpdate(nil), updates...)}
	sort.Slice(d.Updates, func(i, j int) bool {
		a, b := d.Updates[i], d.Updates[j]
		if a.Workload != b.Workload {
			return a.Workload < b.Workload
		}
		if a.Container != b.Container {
			return a.Container < b.Container
		}
		return a.File < b.File
	})
	images, workloads := map[string]bool{}, map[string]bool{}
	for _, u := range d.Updates {
		images[u.Image+":"+u.To] = true
		workloads[u.Workload] = true
	}
	d.Images = sortedKeys(images)
	d.Workloads = sortedKeys(workloads)
	return d
}

// trailers names every image change and every workload, one per line.
func trailers(d MessageData) string {
	seen := map[string]bool{}
	var b strings.Builder
	for _, u := range d.Updates {
		line := fmt.Sprintf("%s: %s %s -> %s\n", ImageTrailer, u.Image, orNone(u.From), u.To)
		if !seen[line] {
			seen[line] = true
			b.WriteString(line)
		}
	}
	for _, w := range d.Workloads {
		fmt.Fprintf(&b, "%s: %s\n", WorkloadTrailer, w)
	}
	return b.String()
}

func orNone(tag string) string {
	if tag == "" {
		return history.NoTag
	}
	return tag
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// limitedWriter fails once a template writes more than left bytes.
type limitedWriter struct {
	w    *bytes.Buffer
	left int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if len(p) > l.left {
		return 0, errMessageTooLong
	}
	l.left -= len(p)
	return l.w.Write(p)
}
