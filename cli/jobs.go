package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/helmflux/helmflux/api/fluxd"
	"github.com/helmflux/helmflux/pkg/update"
)

// Polling of jobs and syncs: fast at first (a release takes well under a
// second), then backing off, never slower than maxPoll.
const (
	firstPoll = 20 * time.Millisecond
	maxPoll   = 500 * time.Millisecond
)

// poller sleeps a little longer each time.
type poller struct{ next time.Duration }

func (p *poller) wait(ctx context.Context) error {
	if p.next == 0 {
		p.next = firstPoll
	}
	t := time.NewTimer(p.next)
	defer t.Stop()
	p.next = min(2*p.next, maxPoll)
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// causeFlags are -m/--message and --user, the cause of a change.
type causeFlags struct{ message, user string }

func (c *causeFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVarP(&c.message, "message", "m", "", "a message for the commit: why")
	cmd.Flags().StringVar(&c.user, "user", "", "who asks, for the commit (default: git config user.name <user.email>)")
}

// cause is the change's cause, the user from git's config unless --user.
func (c *causeFlags) cause() fluxd.Cause {
	user := c.user
	if user == "" {
		user = gitUser()
	}
	return fluxd.Cause{Message: c.message, User: user}
}

// gitUser is "name <email>" from git's config, as fluxctl sends it, or
// $USER when git knows no one.
func gitUser() string {
	get := func(key string) string {
		out, err := exec.Command("git", "config", "--get", key).Output() // #nosec G204 -- fixed arguments
		if err != nil {
			return ""
		}
		return strings.TrimSpace(string(out))
	}
	name, email := get("user.name"), get("user.email")
	switch {
	case name != "" && email != "":
		return name + " <" + email + ">"
	case name != "":
		return name
	case email != "":
		return email
	}
	return os.Getenv("USER")
}

// waitCtx bounds a wait by --timeout.
func (a *app) waitCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, a.opts.timeout)
}

// timedOut turns a context's end into the timeout exit with what goes on.
func (a *app) timedOut(err error, what string) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return withCode(exitTimeout, fmt.Errorf("gave up after %s waiting for %s; the operator goes on with it (set --timeout to wait longer)", a.opts.timeout, what))
	}
	return err
}

// submit posts an update spec and returns the job's ID.
func (a *app) submit(ctx context.Context, spec fluxd.UpdateSpec) (string, error) {
	var id string
	if err := a.post(ctx, "/v9/update-manifests", spec, &id); err != nil {
		return "", err
	}
	return id, nil
}

// awaitJob polls a job until it ends, printing each step as it happens,
// and returns its result; a failed job is an error.
func (a *app) awaitJob(ctx context.Context, id string, quiet bool) (fluxd.JobResult, error) {
	ctx, cancel := a.waitCtx(ctx)
	defer cancel()
	shown := 0
	var p poller
	for {
		var prog fluxd.JobProgress
		if err := a.get(ctx, "/v12/jobs", url.Values{"id": {id}}, &prog); err != nil {
			return fluxd.JobResult{}, a.timedOut(err, "job "+id)
		}
		if !quiet {
			for ; shown < len(prog.Steps); shown++ {
				fmt.Fprintf(a.errOut, "%2d. %s\n", shown+1, prog.Steps[shown])
			}
		}
		switch prog.Status.StatusString {
		case fluxd.JobSucceeded:
			if prog.Status.Err != "" {
				return prog.Status.Result, withCode(exitFailed, errors.New(prog.Status.Err))
			}
			return prog.Status.Result, nil
		case fluxd.JobFailed:
			return prog.Status.Result, withCode(exitFailed, errors.New(prog.Status.Err))
		}
		if err := p.wait(ctx); err != nil {
			return fluxd.JobResult{}, a.timedOut(err, "job "+id)
		}
	}
}

// awaitApplied polls /v6/sync until every GitSync of the repository
// applied rev.
func (a *app) awaitApplied(ctx context.Context, rev string) error {
	ctx, cancel := a.waitCtx(ctx)
	defer cancel()
	var p poller
	for {
		var pending []string
		if err := a.get(ctx, "/v6/sync", url.Values{"ref": {rev}}, &pending); err != nil {
			return a.timedOut(err, shortHash(rev)+" to be applied")
		}
		if len(pending) == 0 {
			return nil
		}
		if err := p.wait(ctx); err != nil {
			return a.timedOut(err, shortHash(rev)+" to be applied")
		}
	}
}

// printResult prints a job's per-workload result as fluxctl did:
// WORKLOAD STATUS UPDATES, one row per container update; or, with -o json,
// the job's whole result.
func (a *app) printResult(res fluxd.JobResult, noHeaders bool, output string) error {
	if output == "json" {
		return writeJSON(a.out, res)
	}
	ids := make([]string, 0, len(res.Result))
	for id := range res.Result {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	t := newTable(a.out, noHeaders, "WORKLOAD", "STATUS", "UPDATES")
	for _, id := range ids {
		r := res.Result[id]
		var updates []string
		for _, c := range r.PerContainer {
			updates = append(updates, fmt.Sprintf("%s: %s -> %s", c.Container, c.Current, tagPart(c.Target)))
		}
		if r.Error != "" {
			updates = append(updates, r.Error)
		}
		if len(updates) == 0 {
			updates = []string{""}
		}
		t.row(id, a.style.status(r.Status), updates[0])
		for _, u := range updates[1:] {
			t.row("", "", u)
		}
	}
	return t.flush()
}

// failedWorkloads is an error naming the workloads whose result failed.
func failedWorkloads(res fluxd.JobResult) error {
	var failed []string
	for id, r := range res.Result {
		if r.Status == fluxd.ResultFailed {
			failed = append(failed, id)
		}
	}
	if len(failed) == 0 {
		return nil
	}
	sort.Strings(failed)
	return withCode(exitFailed, fmt.Errorf("the change failed for %s (see the table above)", strings.Join(failed, ", ")))
}

// tagPart is the tag of an image ref, the whole ref when it has none.
func tagPart(ref string) string {
	if _, tag, ok := update.SplitRef(ref); ok && tag != "" {
		return tag
	}
	return ref
}

// repoPart is an image ref without its tag.
func repoPart(ref string) string {
	if name, _, ok := update.SplitRef(ref); ok {
		return name
	}
	return ref
}

// qualify makes a workload name an ID: "<ns>:<kind>/<name>", the namespace
// added when missing, as fluxctl's -n did; "ns/name" stays fluxd's legacy
// form.
func qualify(ns, w string) string {
	if strings.Contains(w, ":") || !strings.Contains(w, "/") || strings.Count(w, "/") > 1 {
		return w
	}
	kind, _, _ := strings.Cut(w, "/")
	switch strings.ToLower(kind) {
	case "deployment", "daemonset", "statefulset", "cronjob", "job", "helmrelease", "fluxhelmrelease", "replicaset", "pod":
		return ns + ":" + w
	}
	return w // ns/name
}
