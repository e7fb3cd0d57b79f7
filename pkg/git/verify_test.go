package git

import (
	"errors"
	"strings"
	"testing"

	"github.com/helmflux/helmflux/pkg/git/gittest"
)

func TestVerify(t *testing.T) {
	trusted := gittest.NewOpenPGPKey(t, "trusted")
	other := gittest.NewOpenPGPKey(t, "other")
	second := gittest.NewOpenPGPKey(t, "second trusted")
	keyRing := trusted.PublicArmored + second.PublicArmored

	repo := gittest.NewRepo(t, map[string]string{"a": "0"})
	s1 := repo.CommitFiles("s1", map[string]string{"a": "1"}, gittest.SignedBy(trusted))
	s2 := repo.CommitFiles("s2", map[string]string{"a": "2"}, gittest.SignedBy(second))
	s3 := repo.CommitFiles("s3", map[string]string{"a": "3"}, gittest.SignedBy(trusted))
	u4 := repo.CommitFiles("u4", map[string]string{"a": "4"})
	o5 := repo.CommitFiles("o5", map[string]string{"a": "5"}, gittest.SignedBy(other))

	c := newTestCache(t)
	mustFetch(t, c, repo.URL(), Ref{}, nil)
	at := func(h string) Revision { return Revision{Ref: "main", Hash: h} }

	tests := []struct {
		name       string
		rev        string
		since      string
		keyRing    string
		wantLast   string // LastVerified's hash
		wantFailed string // UnverifiedCommitError.Hash, "" for success
		wantReason string
		wantErr    error // other errors
	}{
		{name: "head signed", rev: s3, keyRing: keyRing, wantLast: s3},
		{name: "head signed by second key", rev: s2, keyRing: keyRing, wantLast: s2},
		{name: "head unsigned", rev: u4, keyRing: keyRing, wantFailed: u4, wantReason: "not signed"},
		{name: "head signed by unknown key", rev: o5, keyRing: keyRing, wantFailed: o5, wantReason: "not in the key ring"},
		{name: "all signed since s1", rev: s3, since: s1, keyRing: keyRing, wantLast: s3},
		{name: "since is head", rev: s3, since: s3, keyRing: keyRing, wantLast: s3},
		{name: "unsigned on top stops at last signed", rev: o5, since: s1, keyRing: keyRing, wantLast: s3, wantFailed: u4, wantReason: "not signed"},
		{name: "first new commit fails", rev: o5, since: s3, keyRing: keyRing, wantLast: s3, wantFailed: u4},
		{name: "only one key trusted", rev: s3, since: s1, keyRing: trusted.PublicArmored, wantLast: s1, wantFailed: s2, wantReason: "not in the key ring"},
		{name: "since not an ancestor", rev: s2, since: s3, keyRing: keyRing, wantErr: ErrNotAncestor},
		{name: "bad key ring", rev: s3, keyRing: "not a key", wantErr: ErrInvalidInput},
		{name: "bad since", rev: s3, since: "abc", keyRing: keyRing, wantErr: ErrInvalidInput},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			last, err := c.LastVerified(testCtx(t), repo.URL(), at(tt.rev), tt.since, tt.keyRing)
			verr := c.Verify(testCtx(t), repo.URL(), at(tt.rev), tt.since, tt.keyRing)
			if (err == nil) != (verr == nil) {
				t.Errorf("Verify = %v but LastVerified error = %v", verr, err)
			}
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("got %v, want %v", err, tt.wantErr)
				}
				return
			}
			var uerr *UnverifiedCommitError
			switch {
			case tt.wantFailed == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.wantFailed != "" && !errors.As(err, &uerr):
				t.Fatalf("got %v, want *UnverifiedCommitError", err)
			case tt.wantFailed != "":
				if uerr.Hash != tt.wantFailed {
					t.Errorf("failed commit %s, want %s", uerr.Hash, tt.wantFailed)
				}
				if !strings.Contains(uerr.Reason, tt.wantReason) {
					t.Errorf("reason %q, want it to mention %q", uerr.Reason, tt.wantReason)
				}
			}
			if last.Hash != tt.wantLast {
				t.Errorf("last verified %s, want %s", last.Hash, tt.wantLast)
			}
			if tt.wantLast != "" && last.Ref != "main" {
				t.Errorf("last verified ref %q, want main", last.Ref)
			}
		})
	}
}
