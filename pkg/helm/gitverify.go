package helm

import (
	"context"
	"errors"
	"fmt"

	"github.com/helmflux/helmflux/pkg/git"
)

// ErrUnverified means a git chart's commit did not pass the verification
// its source asks for: it is not signed by a trusted key (a new, signed
// commit helps) or the check could not run (a bad key ring). Nothing of the
// commit was read.
var ErrUnverified = errors.New("git chart commit not verified")

// GitVerification asks that a git chart's commit carry an OpenPGP signature
// by a trusted key, as the GitSync that follows the same repository demands
// of the commits it applies. Resolve checks it before it reads anything of
// the commit (Chart.yaml, its dependencies), and Load checks the commit it
// checks out again, so the tree that is built is the tree that was verified.
type GitVerification struct {
	// KeyRing is one or more armored OpenPGP public keys, concatenated.
	KeyRing string
	// Since, a commit hash, extends the check to every first-parent commit
	// after it up to the chart's commit (the GitSync's "all" mode); "" checks
	// the chart's commit alone ("head"). A Since that is not on the commit's
	// first-parent history (rewritten history) checks the commit alone, as
	// the GitSync does.
	Since string
	// For names who asks for the check (a GitSync), for messages.
	For string
}

// verifyGit checks rev against every verification src asks for.
func (c *Charts) verifyGit(ctx context.Context, src *ChartSource, rev git.Revision) error {
	for _, v := range src.Verify {
		err := c.git.Verify(ctx, src.Git, rev, v.Since, v.KeyRing)
		if errors.Is(err, git.ErrNotAncestor) {
			err = c.git.Verify(ctx, src.Git, rev, "", v.KeyRing)
		}
		if err != nil && v.For != "" {
			return fmt.Errorf("%w for %s: %w", ErrUnverified, v.For, err)
		}
		if err != nil {
			return fmt.Errorf("%w: %w", ErrUnverified, err)
		}
	}
	return nil
}

// verifyKey identifies the verifications of src for cache keys.
func verifyKey(src *ChartSource) []string {
	parts := make([]string, 0, 2*len(src.Verify)+1)
	parts = append(parts, fmt.Sprint(len(src.Verify)))
	for _, v := range src.Verify {
		parts = append(parts, hashKey(v.KeyRing), v.Since)
	}
	return parts
}
