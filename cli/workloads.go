package main

import (
	"fmt"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/helmflux/helmflux/api/fluxd"
)

func (a *app) listWorkloadsCmd() *cobra.Command {
	var ns, container, output string
	var all, noHeaders bool
	cmd := &cobra.Command{
		Use:     "list-workloads",
		Aliases: []string{"list-controllers"},
		Short:   "List the workloads in git: their containers, images, status and policies",
		Example: `  helmflux list-workloads -n team-a
  helmflux list-workloads -a -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			q := url.Values{"namespace": {""}}
			if !all {
				q.Set("namespace", a.opts.namespace(ns))
			}
			var ws []fluxd.ControllerStatus
			if err := a.get(cmd.Context(), "/v6/services", q, &ws); err != nil {
				return err
			}
			if container != "" {
				kept := ws[:0]
				for _, w := range ws {
					for _, c := range w.Containers {
						if c.Name == container {
							kept = append(kept, w)
							break
						}
					}
				}
				ws = kept
			}
			sort.Slice(ws, func(i, j int) bool { return ws[i].ID < ws[j].ID })
			if output == "json" {
				return writeJSON(a.out, nonNil(ws))
			}
			t := newTable(a.out, noHeaders, "WORKLOAD", "CONTAINER", "IMAGE", "RELEASE", "POLICY")
			for _, w := range ws {
				status := a.style.status(w.Status)
				if w.Rollout.Desired > 0 && w.Status == fluxd.StatusUpdating {
					status += fmt.Sprintf(" (%d of %d updated, %d ready)", w.Rollout.Updated, w.Rollout.Desired, w.Rollout.Ready)
				}
				if len(w.Containers) == 0 {
					t.row(w.ID, "", "", status, policyFlags(w))
					continue
				}
				for i, c := range w.Containers {
					if i == 0 {
						t.row(w.ID, c.Name, currentID(c), status, policyFlags(w))
					} else {
						t.row("", c.Name, currentID(c), "", "")
					}
				}
			}
			return t.flush()
		},
	}
	f := cmd.Flags()
	f.StringVarP(&ns, "namespace", "n", "", "the workloads' namespace (default: the kubeconfig context's, else default)")
	f.BoolVarP(&all, "all-namespaces", "a", false, "list the workloads of every namespace")
	f.StringVarP(&container, "container", "c", "", "only the workloads with a container of this name")
	f.BoolVar(&noHeaders, "no-headers", false, "leave out the header line")
	outputFlag(cmd, &output)
	cmd.MarkFlagsMutuallyExclusive("namespace", "all-namespaces")
	return cmd
}

func currentID(c fluxd.Container) string {
	if c.Current == nil {
		return ""
	}
	return c.Current.ID
}

// policyFlags is the POLICY column: automated, locked, ignore.
func policyFlags(w fluxd.ControllerStatus) string {
	var p []string
	if w.Automated {
		p = append(p, "automated")
	}
	if w.Locked {
		p = append(p, "locked")
	}
	if w.Ignore {
		p = append(p, "ignore")
	}
	return strings.Join(p, ",")
}

// nonNil makes a nil list print as [] in JSON.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func (a *app) listImagesCmd() *cobra.Command {
	var ns, workload, output string
	var limit int
	var noHeaders bool
	cmd := &cobra.Command{
		Use:   "list-images",
		Short: "List the images the workloads could run, newest first, the running one marked",
		Example: `  helmflux list-images -n team-a
  helmflux list-images -w team-a:deployment/web -l 5`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			q := url.Values{"containerFields": {""}, "namespace": {""}, "service": {fluxd.AllWorkloads}}
			if workload != "" {
				q.Set("service", qualify(a.opts.namespace(ns), workload))
			} else {
				q.Set("namespace", a.opts.namespace(ns))
			}
			var images []fluxd.ImageStatus
			if err := a.get(cmd.Context(), "/v10/images", q, &images); err != nil {
				return err
			}
			sort.Slice(images, func(i, j int) bool { return images[i].ID < images[j].ID })
			if output == "json" {
				return writeJSON(a.out, nonNil(images))
			}
			return a.printImages(images, limit, noHeaders)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&ns, "namespace", "n", "", "the workloads' namespace (default: the kubeconfig context's, else default)")
	f.StringVarP(&workload, "workload", "w", "", "only this workload, <namespace>:<kind>/<name> or <kind>/<name>")
	f.IntVarP(&limit, "limit", "l", 10, "how many images to show per container; 0 shows all")
	f.BoolVar(&noHeaders, "no-headers", false, "leave out the header line")
	outputFlag(cmd, &output)
	return cmd
}

// printImages prints the seed's list-images table: per container its
// repository, then the tags newest first, the running one marked '->,
// those beyond the limit elided but the running one.
func (a *app) printImages(images []fluxd.ImageStatus, limit int, noHeaders bool) error {
	t := newTable(a.out, noHeaders, "WORKLOAD", "CONTAINER", "IMAGE", "CREATED")
	for _, img := range images {
		if len(img.Containers) == 0 {
			t.row(img.ID, "", "", "")
			continue
		}
		name := img.ID
		for _, c := range img.Containers {
			current := currentID(c)
			repo, running := repoPart(current), tagPart(current)
			note := ""
			if len(c.Available) == 0 {
				note = c.AvailableError
				if note == "" {
					note = "no image data yet: the registry has not been scanned"
				}
				note = a.style.yellow(note)
			}
			t.row(name, c.Name, repo, note)
			name = ""
			seen := false
			for i, av := range c.Available {
				tag := tagPart(av.ID)
				mark := "|  "
				isRunning := tag == running
				if isRunning {
					mark, seen = "'->", true
				} else if seen {
					mark = "   "
				}
				if limit > 0 && i >= limit {
					if !isRunning {
						continue
					}
					if i > limit {
						t.row("", "", fmt.Sprintf(":   (%d image(s) omitted)", i-limit), "")
					}
				}
				created := ""
				if av.CreatedAt != nil && !av.CreatedAt.IsZero() {
					created = av.CreatedAt.UTC().Format(time.RFC822)
				}
				if isRunning {
					tag = a.style.bold(tag)
				}
				t.row("", "", mark+" "+tag, created)
			}
		}
	}
	return t.flush()
}
