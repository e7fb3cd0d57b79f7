package apply

import (
	"fmt"
	"sort"
	"strings"
)

// Action is what happened to one object.
type Action string

// The actions of a ChangeSet.
const (
	Created    Action = "created"
	Configured Action = "configured"
	Unchanged  Action = "unchanged"
	Deleted    Action = "deleted"
	Skipped    Action = "skipped"
	Failed     Action = "failed"
)

// Result is the outcome for one object.
type Result struct {
	ID      ObjectID
	Version string // the API version applied
	Source  string // where the object came from (its helmflux.dev/source annotation)
	Action  Action
	Err     error // set when Action is Failed; why it was Skipped otherwise
}

// ChangeSet is the outcome of an Apply or a Prune, one Result per object.
type ChangeSet struct {
	Results []Result
}

// Count returns how many results have the action.
func (cs *ChangeSet) Count(a Action) int {
	n := 0
	for _, r := range cs.Results {
		if r.Action == a {
			n++
		}
	}
	return n
}

// Failures returns the failed results.
func (cs *ChangeSet) Failures() []Result {
	var out []Result
	for _, r := range cs.Results {
		if r.Action == Failed {
			out = append(out, r)
		}
	}
	return out
}

// Changed tells whether any object was created, configured or deleted.
func (cs *ChangeSet) Changed() bool {
	return cs.Count(Created)+cs.Count(Configured)+cs.Count(Deleted) > 0
}

// Summary says in one line what happened, e.g. "2 created, 1 configured, 40 unchanged".
func (cs *ChangeSet) Summary() string {
	var parts []string
	for _, a := range []Action{Created, Configured, Deleted, Unchanged, Skipped, Failed} {
		if n := cs.Count(a); n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, a))
		}
	}
	if len(parts) == 0 {
		return "no objects"
	}
	return strings.Join(parts, ", ")
}

// Changes lists the changed objects as "Kind/ns/name created", sorted, for events.
func (cs *ChangeSet) Changes() []string {
	var out []string
	for _, r := range cs.Results {
		if r.Action == Created || r.Action == Configured || r.Action == Deleted {
			out = append(out, r.ID.Display()+" "+string(r.Action))
		}
	}
	sort.Strings(out)
	return out
}
