package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/helmflux/helmflux/api/fluxd"
)

// The policy names of fluxd's API (fluxcd.io/<name> annotations in git).
const (
	policyAutomated  = "automated"
	policyLocked     = "locked"
	policyLockedMsg  = "locked_msg"
	policyLockedUser = "locked_user"
	policyTagAll     = "tag_all"
	policyTagPrefix  = "tag."
)

// policyTarget is what every policy command shares: one workload, a
// cause, and the change it asks for.
type policyTarget struct {
	ns, workload string
	noHeaders    bool
	output       string
	cause        causeFlags
}

func (p *policyTarget) add(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVarP(&p.ns, "namespace", "n", "", "namespace of an unqualified workload name (default: the kubeconfig context's, else default)")
	f.StringVarP(&p.workload, "workload", "w", "", "the workload, <namespace>:<kind>/<name> or <kind>/<name>")
	f.BoolVar(&p.noHeaders, "no-headers", false, "leave out the header line of the result table")
	outputFlag(cmd, &p.output)
	p.cause.add(cmd)
	_ = cmd.MarkFlagRequired("workload")
}

// change runs one policy update and reports it as release does.
func (a *app) change(ctx context.Context, p *policyTarget, upd fluxd.PolicyUpdate) error {
	if err := checkOutput(p.output); err != nil {
		return err
	}
	if len(upd.Add) == 0 && len(upd.Remove) == 0 {
		return usageError("nothing to change: give at least one policy flag")
	}
	id := qualify(a.opts.namespace(p.ns), p.workload)
	res, err := a.runJob(ctx, fluxd.UpdatePolicy, p.cause.cause(), map[string]fluxd.PolicyUpdate{id: upd})
	if err != nil {
		return err
	}
	if err := a.printResult(res, p.noHeaders, p.output); err != nil {
		return err
	}
	if err := a.applied(ctx, res.Revision); err != nil {
		return err
	}
	return failedWorkloads(res)
}

func newPolicyUpdate() fluxd.PolicyUpdate {
	return fluxd.PolicyUpdate{Add: map[string]string{}, Remove: map[string]string{}}
}

// lockPolicies are what lock adds: the flag, and the message and user
// when known.
func lockPolicies(upd fluxd.PolicyUpdate, cause fluxd.Cause) {
	upd.Add[policyLocked] = "true"
	if cause.User != "" {
		upd.Add[policyLockedUser] = cause.User
		if cause.Message != "" {
			upd.Add[policyLockedMsg] = cause.Message
		}
	}
}

func unlockPolicies(upd fluxd.PolicyUpdate) {
	for _, k := range []string{policyLocked, policyLockedMsg, policyLockedUser} {
		upd.Remove[k] = "true"
	}
}

func (a *app) simplePolicyCmd(use, short, example string, fill func(fluxd.PolicyUpdate, fluxd.Cause)) *cobra.Command {
	var p policyTarget
	cmd := &cobra.Command{
		Use: use, Short: short, Example: example, Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			upd := newPolicyUpdate()
			fill(upd, p.cause.cause())
			return a.change(cmd.Context(), &p, upd)
		},
	}
	p.add(cmd)
	return cmd
}

func (a *app) automateCmd() *cobra.Command {
	return a.simplePolicyCmd("automate", "Let image automation release new images to a workload",
		"  helmflux automate -w team-a:deployment/web",
		func(u fluxd.PolicyUpdate, _ fluxd.Cause) { u.Add[policyAutomated] = "true" })
}

func (a *app) deautomateCmd() *cobra.Command {
	return a.simplePolicyCmd("deautomate", "Stop image automation for a workload",
		"  helmflux deautomate -w team-a:deployment/web",
		func(u fluxd.PolicyUpdate, _ fluxd.Cause) { u.Remove[policyAutomated] = "true" })
}

func (a *app) lockCmd() *cobra.Command {
	return a.simplePolicyCmd("lock", "Lock a workload: no release or automation changes its images",
		`  helmflux lock -w team-a:deployment/web -m "investigating a leak"`,
		func(u fluxd.PolicyUpdate, c fluxd.Cause) { lockPolicies(u, c) })
}

func (a *app) unlockCmd() *cobra.Command {
	return a.simplePolicyCmd("unlock", "Unlock a workload",
		"  helmflux unlock -w team-a:deployment/web",
		func(u fluxd.PolicyUpdate, _ fluxd.Cause) { unlockPolicies(u) })
}

func (a *app) policyCmd() *cobra.Command {
	var p policyTarget
	var tags []string
	var tagAll string
	var automate, deautomate, lock, unlock bool
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Change a workload's policies: tag filters, automation, lock",
		Long: `policy changes several policies of one workload in one commit. A tag filter
is glob:, semver: or regexp: followed by its pattern (glob: when no prefix is
given); the filter '*' removes the container's filter.`,
		Example: `  helmflux policy -w team-a:deployment/web --tag web=semver:~1.4 --automate
  helmflux policy -w team-a:deployment/web --tag-all 'glob:release-*'
  helmflux policy -w team-a:deployment/web --tag sidecar='*' --unlock`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			upd := newPolicyUpdate()
			cause := p.cause.cause()
			for _, t := range tags {
				container, filter, ok := strings.Cut(t, "=")
				if !ok || container == "" || filter == "" {
					return usageError("--tag %q: want <container>=<filter>, such as web=semver:~1.4", t)
				}
				setFilter(upd, policyTagPrefix+container, filter)
			}
			if tagAll != "" {
				setFilter(upd, policyTagAll, tagAll)
			}
			switch {
			case automate:
				upd.Add[policyAutomated] = "true"
			case deautomate:
				upd.Remove[policyAutomated] = "true"
			}
			switch {
			case lock:
				lockPolicies(upd, cause)
			case unlock:
				unlockPolicies(upd)
			}
			return a.change(cmd.Context(), &p, upd)
		},
	}
	p.add(cmd)
	f := cmd.Flags()
	f.StringSliceVar(&tags, "tag", nil, "a container's tag filter, <container>=<filter>; repeatable")
	f.StringVar(&tagAll, "tag-all", "", "the tag filter of every container")
	f.BoolVar(&automate, "automate", false, "automate the workload")
	f.BoolVar(&deautomate, "deautomate", false, "stop automating the workload")
	f.BoolVar(&lock, "lock", false, "lock the workload")
	f.BoolVar(&unlock, "unlock", false, "unlock the workload")
	cmd.MarkFlagsMutuallyExclusive("automate", "deautomate")
	cmd.MarkFlagsMutuallyExclusive("lock", "unlock")
	return cmd
}

// setFilter adds a tag filter, glob: unless it names its kind; '*' (all
// tags) removes the filter instead.
func setFilter(upd fluxd.PolicyUpdate, key, filter string) {
	if filter == "*" || filter == "glob:*" {
		upd.Remove[key] = "true"
		return
	}
	for _, k := range []string{"glob:", "semver:", "regexp:", "regex:"} {
		if strings.HasPrefix(filter, k) {
			upd.Add[key] = filter
			return
		}
	}
	upd.Add[key] = fmt.Sprintf("glob:%s", filter)
}
