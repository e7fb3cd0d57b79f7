package apply

import (
	"crypto/sha256"
	"encoding/json"
	"sync"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// State is what a set's Syncs left behind: for each object, a digest of the
// desired object applied and the fingerprint of the live object the API
// server answered with. It lives in memory only; a new State (a restart, a
// changed spec) makes the next Sync compare every object with the cluster
// again.
type State struct {
	mu      sync.Mutex
	records map[ObjectID]record
}

type record struct {
	desired [sha256.Size]byte
	live    Fingerprint
}

// NewState returns an empty State.
func NewState() *State { return &State{records: map[ObjectID]record{}} }

// Len returns how many objects the State knows.
func (s *State) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.records)
}

// Drifted reports whether the live object id, as a watch saw it (exists
// false for a deleted one), differs from what the last Sync left. It is
// false for an object the State does not know.
func (s *State) Drifted(id ObjectID, live Fingerprint, exists bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.records[id]
	return ok && (!exists || r.live != live)
}

// current tells whether the last Sync applied desired to id and left it as
// live is now.
func (s *State) current(id ObjectID, desired [sha256.Size]byte, live Fingerprint) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.records[id]
	return ok && r.desired == desired && r.live == live && !live.Deleting
}

// update records what a Sync did: objects it applied (or found equal)
// with the live fingerprint, objects that failed forgotten, and objects no
// longer in the set dropped.
func (s *State) update(entries []*entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	keep := make(map[ObjectID]record, len(entries))
	for _, e := range entries {
		id := e.result.ID
		switch {
		case e.skip:
			if r, ok := s.records[id]; ok {
				keep[id] = r
			}
		case e.digested && e.dryRunOK && (e.result.Action == Created || e.result.Action == Configured || e.result.Action == Unchanged):
			keep[id] = record{desired: e.digest, live: e.left}
		}
	}
	s.records = keep
}

// digest returns a digest of an object's JSON form (map keys sorted); ok
// is false for an object that does not encode, which is never skipped.
func digest(obj *unstructured.Unstructured) (d [sha256.Size]byte, ok bool) {
	b, err := json.Marshal(obj.Object)
	if err != nil {
		return d, false
	}
	return sha256.Sum256(b), true
}
