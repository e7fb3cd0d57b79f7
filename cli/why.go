package main

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/spf13/cobra"

	"github.com/helmflux/helmflux/api/fluxd"
	helmfluxv1alpha1 "github.com/helmflux/helmflux/api/helmflux/v1alpha1"
)

// whyAnswer is what `why -o json` prints: the operator's account of the
// workload's images, and the tag each container runs in the cluster.
type whyAnswer struct {
	fluxd.WorkloadImages
	// Running maps a container to the image the cluster runs.
	Running map[string]string `json:"running"`
}

func (a *app) whyCmd() *cobra.Command {
	var ns, workload, output string
	cmd := &cobra.Command{
		Use:   "why",
		Short: "Say why a workload's images are what they are: per container the best candidate and what passed the others over",
		Long: `why answers "why is this image not updating?" from what image automation
decided in its last pass: per container the tag in git, the tag running, the
best candidate its policy allows, and why each better-ranked tag was passed
over (the filter, a hold and its commit, a lock, not newer, no creation time,
an incomplete scan, a registry error); then the holds in force and the last
write-back's result.`,
		Example: `  helmflux why -w team-a:deployment/web
  helmflux why -n team-a -w deployment/web -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			id := qualify(a.opts.namespace(ns), workload)
			ans, err := a.why(cmd.Context(), id)
			if err != nil {
				return err
			}
			if output == "json" {
				return writeJSON(a.out, ans)
			}
			return a.printWhy(ans)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&ns, "namespace", "n", "", "namespace of an unqualified workload name (default: the kubeconfig context's, else default)")
	f.StringVarP(&workload, "workload", "w", "", "the workload, <namespace>:<kind>/<name> or <kind>/<name>")
	_ = cmd.MarkFlagRequired("workload")
	outputFlag(cmd, &output)
	return cmd
}

func (a *app) why(ctx context.Context, id string) (whyAnswer, error) {
	var ans whyAnswer
	if err := a.get(ctx, "/v12/why", url.Values{"workload": {id}}, &ans.WorkloadImages); err != nil {
		return ans, err
	}
	ans.Running = map[string]string{}
	var images []fluxd.ImageStatus
	q := url.Values{"containerFields": {"Name,Current"}, "namespace": {""}, "service": {ans.ID}}
	if err := a.get(ctx, "/v10/images", q, &images); err != nil && !isMissing(err) {
		return ans, err
	}
	for _, img := range images {
		for _, c := range img.Containers {
			ans.Running[c.Name] = currentID(c)
		}
	}
	return ans, nil
}

func (a *app) printWhy(ans whyAnswer) error {
	s := a.style
	fmt.Fprintf(a.out, "%s  (GitSync %s)\n", s.bold(ans.ID), ans.GitSync)
	if len(ans.Containers) == 0 {
		fmt.Fprintln(a.out, "\nImage automation has not decided on this workload: it is not automated (helmflux automate), or no pass ran yet.")
	}
	for _, c := range ans.Containers {
		fmt.Fprintf(a.out, "\n%s  %s\n", s.bold(c.Container), c.Image)
		t := newTable(a.out, true)
		t.row("  in git", c.Tag)
		if r, ok := ans.Running[c.Container]; ok {
			t.row("  running", tagPart(r))
		}
		best := c.Best
		switch best {
		case "":
			best = s.yellow("none")
		case c.Tag:
			best = s.green(best) + "  (up to date)"
		default:
			best = s.yellow(best) + "  (not written yet)"
		}
		t.row("  best", best)
		if c.Message != "" {
			t.row("  decision", c.Message)
		}
		if err := t.flush(); err != nil {
			return err
		}
		if len(c.PassedOver) > 0 {
			fmt.Fprintln(a.out, "  passed over:")
			t := newTable(a.out, true)
			for _, p := range c.PassedOver {
				tag := p.Tag
				if tag == "" {
					tag = "(every tag)"
				}
				t.row("   ", tag, s.yellow(reasonWord(p.Reason)), p.Message)
			}
			if err := t.flush(); err != nil {
				return err
			}
		}
		for _, h := range ans.Holds {
			if h.Container == c.Container {
				fmt.Fprintf(a.out, "  %s\n", holdLine(h, s))
			}
		}
	}
	if ans.LastRun != "" || ans.Ready != "" {
		fmt.Fprintf(a.out, "\nLast automation pass: %s\n", strings.TrimSpace(ans.LastRun+"  "+ans.Ready))
	}
	return nil
}

// reasonWord is a PassedOverTag reason as a person reads it.
func reasonWord(reason string) string {
	switch reason {
	case helmfluxv1alpha1.PassedFilter:
		return "filter"
	case helmfluxv1alpha1.PassedHeld:
		return "held"
	case helmfluxv1alpha1.PassedLocked:
		return "locked"
	case helmfluxv1alpha1.PassedNotNewer:
		return "not newer"
	case helmfluxv1alpha1.PassedNoCreationTime:
		return "no creation time"
	case helmfluxv1alpha1.PassedIncompleteScan:
		return "incomplete scan"
	case helmfluxv1alpha1.PassedRegistryError:
		return "registry error"
	}
	return strings.ToLower(reason)
}

func holdLine(h helmfluxv1alpha1.ImageHold, s style) string {
	line := fmt.Sprintf("hold: %s %s keeps %s", strings.ToLower(h.Reason), h.Tag, h.Current)
	if h.Commit != "" {
		line += " (commit " + shortHash(h.Commit)
		if h.Since != nil {
			line += ", " + h.Since.UTC().Format("2006-01-02 15:04 UTC")
		}
		line += ")"
	}
	if h.Message != "" {
		line += ": " + h.Message
	}
	return s.yellow(line)
}
