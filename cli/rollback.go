package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/helmflux/helmflux/api/fluxd"
)

type rollbackFlags struct {
	ns, workload, to string
	previous, lock   bool
	dryRun           bool
	noHeaders        bool
	output           string
	cause            causeFlags
}

func (a *app) rollbackCmd() *cobra.Command {
	var f rollbackFlags
	cmd := &cobra.Command{
		Use:   "rollback",
		Short: "Put a workload's images back as they were at a commit, as one new commit that automation does not undo",
		Long: `rollback reverts exactly the changes to a workload's images since a commit
(--to <commit>), or the newest one (--previous), found in the history of
the workload's files (the commits that changed its image references), as one new commit;
other changes of those commits stay. Image automation then holds the
workload at the rolled-back tags until a newer tag than the one rolled back
appears (helmflux why shows the hold). --lock also locks the workload in the
same commit, so nothing releases to it until it is unlocked. --dry-run shows
the patch and commits nothing.`,
		Example: `  helmflux rollback -w team-a:deployment/web --previous
  helmflux rollback -w team-a:deployment/web --to 3f2c1ab --lock -m "1.5.0 leaks memory"
  helmflux rollback -w team-a:deployment/web --previous --dry-run`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return a.rollback(cmd.Context(), f) },
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.ns, "namespace", "n", "", "namespace of an unqualified workload name (default: the kubeconfig context's, else default)")
	fl.StringVarP(&f.workload, "workload", "w", "", "the workload, <namespace>:<kind>/<name> or <kind>/<name>")
	fl.StringVar(&f.to, "to", "", "the commit (a hash or a prefix of 7 or more hex digits) whose images to restore")
	fl.BoolVar(&f.previous, "previous", false, "undo the newest commit that changed the workload's images")
	fl.BoolVar(&f.lock, "lock", false, "also lock the workload, with -m as the lock's message")
	fl.BoolVar(&f.dryRun, "dry-run", false, "print the patch; commit nothing")
	fl.BoolVar(&f.noHeaders, "no-headers", false, "leave out the header line of the result table")
	outputFlag(cmd, &f.output)
	f.cause.add(cmd)
	_ = cmd.MarkFlagRequired("workload")
	cmd.MarkFlagsOneRequired("to", "previous")
	cmd.MarkFlagsMutuallyExclusive("to", "previous")
	return cmd
}

func (a *app) rollback(ctx context.Context, f rollbackFlags) error {
	if err := checkOutput(f.output); err != nil {
		return err
	}
	spec := fluxd.RollbackSpec{Workload: qualify(a.opts.namespace(f.ns), f.workload), To: f.to, Previous: f.previous,
		Lock: f.lock, DryRun: f.dryRun, Cause: f.cause.cause()}
	what := "rollback"
	if f.dryRun {
		what = "dry-run rollback"
	}
	fmt.Fprintf(a.errOut, "Submitting %s of %s ...\n", what, spec.Workload)
	var id string
	if err := a.post(ctx, "/v12/rollback", spec, &id); err != nil {
		return err
	}
	res, err := a.awaitJob(ctx, id, f.output == "json")
	if err != nil {
		return err
	}
	if f.output == "json" {
		if !f.dryRun && res.Revision != "" {
			if err := a.awaitApplied(ctx, res.Revision); err != nil {
				return err
			}
		}
		return writeJSON(a.out, res)
	}
	for _, c := range res.Reverted {
		fmt.Fprintf(a.errOut, "Reverts %s %s\n", shortHash(c.Hash), c.Subject)
	}
	if f.dryRun {
		if res.Patch == "" {
			fmt.Fprintln(a.errOut, "Nothing to roll back: the workload already has the target's images.")
			return nil
		}
		_, err := fmt.Fprint(a.out, a.colourPatch(res.Patch))
		return err
	}
	if err := a.printResult(res, f.noHeaders, "tab"); err != nil {
		return err
	}
	if err := a.applied(ctx, res.Revision); err != nil {
		return err
	}
	return failedWorkloads(res)
}

// colourPatch paints a unified diff's added and removed lines on a
// terminal.
func (a *app) colourPatch(patch string) string {
	if !a.style.on {
		return patch
	}
	var out []byte
	for _, l := range strings.Split(strings.TrimSuffix(patch, "\n"), "\n") {
		switch {
		case len(l) > 0 && l[0] == '+' && !strings.HasPrefix(l, "+++"):
			l = a.style.green(l)
		case len(l) > 0 && l[0] == '-' && !strings.HasPrefix(l, "---"):
			l = a.style.red(l)
		}
		out = append(out, l...)
		out = append(out, '\n')
	}
	return string(out)
}
