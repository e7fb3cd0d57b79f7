package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/helmflux/helmflux/api/fluxd"
)

type releaseFlags struct {
	ns          string
	workloads   []string
	all         bool
	excludes    []string
	image       string
	allImages   bool
	dryRun      bool
	interactive bool
	force       bool
	watch       bool
	noHeaders   bool
	output      string
	cause       causeFlags
}

func (a *app) releaseCmd() *cobra.Command {
	var f releaseFlags
	cmd := &cobra.Command{
		Use:   "release",
		Short: "Release an image to workloads: a commit in git, applied at once",
		Long: `release writes new image tags into the workloads' files in git as one
commit per repository, waits until the operator applied it, and prints what
changed. --dry-run shows what would change; --interactive lets you pick.`,
		Example: `  helmflux release --workload team-a:deployment/web --update-image registry.example/web:1.4.2
  helmflux release --all --update-all-images --dry-run
  helmflux release -n team-a --workload deployment/web --update-all-images --watch -m "security fix"`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return a.release(cmd.Context(), cmd.InOrStdin(), f) },
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.ns, "namespace", "n", "", "namespace of unqualified workload names (default: the kubeconfig context's, else default)")
	fl.StringSliceVarP(&f.workloads, "workload", "w", nil, "a workload to release to, <namespace>:<kind>/<name>; repeat or comma-separate for more")
	fl.BoolVar(&f.all, "all", false, "release to every workload")
	fl.StringSliceVar(&f.excludes, "exclude", nil, "a workload to leave out")
	fl.StringVarP(&f.image, "update-image", "i", "", "the image to release, with its tag")
	fl.BoolVar(&f.allImages, "update-all-images", false, "release the newest image each container's policy allows")
	fl.BoolVar(&f.dryRun, "dry-run", false, "show what would change; commit nothing")
	fl.BoolVar(&f.interactive, "interactive", false, "show what would change and pick the updates to release")
	fl.BoolVarP(&f.force, "force", "f", false, "release to locked workloads too, and to images outside the filter")
	fl.BoolVar(&f.watch, "watch", false, "after the commit is applied, watch the rollout until the workloads are ready")
	fl.BoolVar(&f.noHeaders, "no-headers", false, "leave out the header line of the result table")
	outputFlag(cmd, &f.output)
	f.cause.add(cmd)
	cmd.MarkFlagsMutuallyExclusive("workload", "all")
	cmd.MarkFlagsMutuallyExclusive("update-image", "update-all-images")
	cmd.MarkFlagsMutuallyExclusive("dry-run", "interactive")
	cmd.MarkFlagsMutuallyExclusive("interactive", "output-format")
	return cmd
}

func (a *app) release(ctx context.Context, in io.Reader, f releaseFlags) error {
	started := time.Now()
	if err := checkOutput(f.output); err != nil {
		return err
	}
	if len(f.workloads) == 0 && !f.all {
		return usageError("name the workloads: --workload <id> (repeatable) or --all")
	}
	if f.image == "" && !f.allImages {
		return usageError("name the image: --update-image <image:tag> or --update-all-images")
	}
	ns := a.opts.namespace(f.ns)
	spec := fluxd.ImageReleaseSpec{ImageSpec: f.image, Kind: fluxd.ReleaseKindExecute, Force: f.force, Excludes: []string{}}
	if f.allImages {
		spec.ImageSpec = fluxd.AllLatestImages
	}
	if f.all {
		spec.ServiceSpecs = []string{fluxd.AllWorkloads}
	}
	for _, w := range f.workloads {
		spec.ServiceSpecs = append(spec.ServiceSpecs, qualify(ns, w))
	}
	for _, w := range f.excludes {
		spec.Excludes = append(spec.Excludes, qualify(ns, w))
	}
	what := "release"
	if f.dryRun || f.interactive {
		spec.Kind = fluxd.ReleaseKindPlan
		what = "dry-run release"
	}
	fmt.Fprintf(a.errOut, "Submitting %s ...\n", what)
	res, err := a.runJob(ctx, fluxd.UpdateImages, f.cause.cause(), spec)
	if err != nil {
		return err
	}
	if err := a.printResult(res, f.noHeaders, f.output); err != nil {
		return err
	}
	if f.interactive {
		picked, err := a.pick(in, res)
		if err != nil || len(picked) == 0 {
			return err
		}
		fmt.Fprintln(a.errOut, "Submitting selected release ...")
		cs := fluxd.ContainersReleaseSpec{Kind: fluxd.ReleaseKindExecute, ContainerSpecs: picked, Force: f.force}
		if res, err = a.runJob(ctx, fluxd.UpdateContainers, f.cause.cause(), cs); err != nil {
			return err
		}
		if err := a.printResult(res, f.noHeaders, f.output); err != nil {
			return err
		}
	}
	if spec.Kind == fluxd.ReleaseKindPlan && !f.interactive {
		return failedWorkloads(res)
	}
	if err := a.applied(ctx, res.Revision); err != nil {
		return err
	}
	if f.watch && res.Revision != "" {
		if err := a.watchRollout(ctx, res); err != nil {
			return err
		}
	}
	fmt.Fprintf(a.errOut, "Took %s\n", time.Since(started).Round(time.Millisecond))
	return failedWorkloads(res)
}

// runJob submits an update of type typ and awaits it, printing its steps.
func (a *app) runJob(ctx context.Context, typ string, cause fluxd.Cause, spec any) (fluxd.JobResult, error) {
	raw, err := json.Marshal(spec)
	if err != nil {
		return fluxd.JobResult{}, err
	}
	id, err := a.submit(ctx, fluxd.UpdateSpec{Type: typ, Cause: cause, Spec: raw})
	if err != nil {
		return fluxd.JobResult{}, err
	}
	return a.awaitJob(ctx, id, false)
}

// applied reports the pushed commit and waits until it is applied; no
// revision means nothing was committed.
func (a *app) applied(ctx context.Context, rev string) error {
	if rev == "" {
		fmt.Fprintln(a.errOut, "Nothing to commit: git already says so.")
		return nil
	}
	fmt.Fprintf(a.errOut, "Commit pushed:  %s\n", shortHash(rev))
	if err := a.awaitApplied(ctx, rev); err != nil {
		return err
	}
	fmt.Fprintf(a.errOut, "Commit applied: %s\n", shortHash(rev))
	return nil
}

// pick lists a plan's updates, numbered, and reads which to release: a
// line of numbers ("1,3"), "all" or "none" (an empty line is all).
func (a *app) pick(in io.Reader, plan fluxd.JobResult) (map[string][]fluxd.ContainerUpdate, error) {
	type choice struct {
		id string
		u  fluxd.ContainerUpdate
	}
	var choices []choice
	ids := make([]string, 0, len(plan.Result))
	for id := range plan.Result {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		if r := plan.Result[id]; r.Status == fluxd.ResultSuccess {
			for _, u := range r.PerContainer {
				choices = append(choices, choice{id, u})
			}
		}
	}
	if len(choices) == 0 {
		fmt.Fprintln(a.errOut, "Nothing to release.")
		return nil, nil
	}
	for i, c := range choices {
		fmt.Fprintf(a.errOut, "%3d) %s %s: %s -> %s\n", i+1, c.id, c.u.Container, c.u.Current, tagPart(c.u.Target))
	}
	fmt.Fprint(a.errOut, "Release which? [all (Enter), none, or numbers such as 1,3]: ")
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && line == "" {
		return nil, usageError("no answer on standard input: nothing released")
	}
	line = strings.TrimSpace(strings.ToLower(line))
	picked := map[string][]fluxd.ContainerUpdate{}
	add := func(c choice) { picked[c.id] = append(picked[c.id], c.u) }
	switch line {
	case "", "all", "a", "y", "yes":
		for _, c := range choices {
			add(c)
		}
	case "none", "n", "no", "q":
		fmt.Fprintln(a.errOut, "Nothing released.")
		return nil, nil
	default:
		for _, f := range strings.FieldsFunc(line, func(r rune) bool { return r == ',' || r == ' ' }) {
			n, err := strconv.Atoi(f)
			if err != nil || n < 1 || n > len(choices) {
				return nil, usageError("%q is not one of the numbers 1 to %d", f, len(choices))
			}
			add(choices[n-1])
		}
	}
	return picked, nil
}

// watchRollout polls the released workloads until every one is ready, or
// one reports a rollout problem.
func (a *app) watchRollout(ctx context.Context, res fluxd.JobResult) error {
	var ids []string
	for id, r := range res.Result {
		if r.Status == fluxd.ResultSuccess {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	sort.Strings(ids)
	fmt.Fprintln(a.errOut, "Monitoring rollout ...")
	ctx, cancel := a.waitCtx(ctx)
	defer cancel()
	last := map[string]string{}
	var p poller
	for {
		var ws []fluxd.ControllerStatus
		q := url.Values{"namespace": {""}, "services": {strings.Join(ids, ",")}}
		if err := a.get(ctx, "/v11/services", q, &ws); err != nil {
			return a.timedOut(err, "the rollout")
		}
		ready := 0
		for _, w := range ws {
			line := fmt.Sprintf("%s %s: %d of %d updated, %d ready", w.ID, a.style.status(w.Status), w.Rollout.Updated, w.Rollout.Desired, w.Rollout.Ready)
			if line != last[w.ID] {
				fmt.Fprintln(a.errOut, line)
				last[w.ID] = line
			}
			if len(w.Rollout.Messages) > 0 {
				return withCode(exitFailed, fmt.Errorf("the rollout of %s has a problem: %s", w.ID, strings.Join(w.Rollout.Messages, "; ")))
			}
			if w.Status == fluxd.StatusReady {
				ready++
			}
		}
		if ready == len(ids) {
			fmt.Fprintln(a.errOut, "All workloads are ready.")
			return nil
		}
		if err := p.wait(ctx); err != nil {
			return a.timedOut(err, "the rollout")
		}
	}
}
