package fluxapi

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/helmflux/helmflux/pkg/policy"
	"github.com/helmflux/helmflux/pkg/update"
)

// policyChange is one workload's policy update.
type policyChange struct {
	id          ID
	add, remove map[string]string
}

// parsePolicies checks a policy update: known policy names, "true" for
// flags, a filter that parses for tags.
func parsePolicies(s map[string]PolicyUpdate) ([]policyChange, error) {
	if len(s) == 0 {
		return nil, badRequest("the policy update names no workload")
	}
	var out []policyChange
	for k, u := range s {
		id, err := ParseID(k)
		if err != nil {
			return nil, badRequest("%v", err)
		}
		for name, value := range u.Add {
			if err := checkPolicy(name, value); err != nil {
				return nil, badRequest("%s: %v", k, err)
			}
		}
		for name := range u.Remove {
			if !isPolicyName(name) {
				return nil, badRequest("%s: unknown policy %q", k, name)
			}
		}
		if len(u.Add) == 0 && len(u.Remove) == 0 {
			return nil, badRequest("%s: the policy update adds and removes nothing", k)
		}
		out = append(out, policyChange{id: id, add: u.Add, remove: u.Remove})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id.String() < out[j].id.String() })
	return out, nil
}

// checkPolicy checks one policy to add.
func checkPolicy(name, value string) error {
	switch {
	case !isPolicyName(name):
		return fmt.Errorf("unknown policy %q (want automated, locked, locked_msg, locked_user, ignore, tag_all or tag.<container>)", name)
	case name == policy.LockedMsgKey || name == policy.LockedUserKey:
		if strings.ContainsAny(value, "\r\n") || len(value) > 1024 {
			return fmt.Errorf("%s must be one line of at most 1024 bytes", name)
		}
		return nil
	case name == update.TagAllPolicy || strings.HasPrefix(name, policy.TagKeyPrefix):
		if value == "" {
			return nil // removes the filter, as in fluxd
		}
		if _, err := policy.ParseFilter(value); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		return nil
	case value != "true":
		return fmt.Errorf("%s takes the value \"true\", not %q", name, value)
	}
	return nil
}

// policySubject names a policy change the way fluxd's commits did.
func policySubject(c policyChange) string {
	_, automate := c.add[policy.AutomatedKey]
	_, deautomate := c.remove[policy.AutomatedKey]
	_, lock := c.add[policy.LockedKey]
	_, unlock := c.remove[policy.LockedKey]
	n := len(c.add) + len(c.remove)
	switch {
	case automate && len(c.add) == 1 && len(c.remove) == 0:
		return "Automated: " + c.id.String()
	case deautomate && len(c.remove) == 1 && len(c.add) == 0:
		return "Deautomated: " + c.id.String()
	case lock && len(c.remove) == 0 && n == len(c.add):
		return "Locked: " + c.id.String()
	case unlock && len(c.add) == 0:
		return "Unlocked: " + c.id.String()
	}
	return "Updated policies: " + c.id.String()
}

// policies runs a policy update: one commit per GitSync that edits only
// the workloads' annotations.
func (wr *Writer) policies(ctx context.Context, cause Cause, changes []policyChange, step func(string, ...any)) (JobResult, error) {
	ids := make([]ID, len(changes))
	for i, c := range changes {
		ids[i] = c.id
	}
	ws, err := wr.Cluster.workloads(ctx, filter{ids: ids})
	if err != nil {
		return JobResult{}, err
	}
	res := JobResult{Result: map[string]WorkloadResult{}}
	for _, g := range groups(ws) {
		rev, err := wr.edit(ctx, g, step, func(files []update.File, images map[string][]update.Image) (map[string][]byte, string, error) {
			var edits []update.PolicyChange
			var subjects []string
			for _, id := range g.ids {
				c := findChange(changes, id)
				obj, ok := objectOf(images[id.String()], id)
				if !ok {
					res.Result[id.String()] = WorkloadResult{Status: ResultFailed, Error: "not found in the GitSync's files"}
					continue
				}
				edits = append(edits, update.PolicyChange{Object: obj, Add: c.add, Remove: c.remove})
				subjects = append(subjects, policySubject(c))
				step("Update the policies of %s.", id)
				res.Result[id.String()] = WorkloadResult{Status: ResultSuccess}
			}
			if len(edits) == 0 {
				return nil, "", nil
			}
			newFiles, errs := update.ApplyPolicies(files, edits)
			if len(errs) > 0 {
				return nil, "", errors.Join(errs...)
			}
			if len(newFiles) == 0 {
				for _, id := range g.ids {
					if r := res.Result[id.String()]; r.Status == ResultSuccess {
						res.Result[id.String()] = WorkloadResult{Status: ResultSkipped, Error: "policies unchanged"}
					}
				}
				return nil, "", nil
			}
			subject := subjects[0]
			if len(subjects) > 1 {
				subject = fmt.Sprintf("Updated policies of %d workloads", len(subjects))
			}
			return newFiles, commitMessage(subject, cause, nil, g.ids), nil
		})
		if err != nil {
			return JobResult{}, err
		}
		if rev != "" {
			res.Revision = rev
		}
	}
	return res, nil
}

// findChange finds the change that names id (a legacy ID names it too).
func findChange(changes []policyChange, id ID) policyChange {
	for _, c := range changes {
		if c.id.matches(id) {
			return c
		}
	}
	return policyChange{id: id}
}

// objectOf names the object a policy edit targets: as its file writes it
// when it has images, else from its ID.
func objectOf(images []update.Image, id ID) (update.ObjectRef, bool) {
	if len(images) > 0 {
		return images[0].Object, true
	}
	k, ok := workloadKinds[id.Kind]
	if !ok {
		return update.ObjectRef{}, false
	}
	return update.ObjectRef{Kind: k.kind, Namespace: id.Namespace, Name: id.Name}, true
}
