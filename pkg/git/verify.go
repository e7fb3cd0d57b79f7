package git

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	gogit "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// maxKeyRing bounds the armored key ring a spec or Secret can hand us.
const maxKeyRing = 1 << 20

// Verify checks OpenPGP signatures on rev's history against keyRing (one or
// more armored public key blocks, concatenated).
//
// With since == "" only rev.Hash is checked (Flux's "head" mode). With since
// set to a commit hash, every commit on the first-parent chain after since
// (exclusive) up to rev.Hash is checked ("all" mode). The first commit that
// fails is reported as *UnverifiedCommitError; use LastVerified to learn how
// far the chain is good. If since is not on rev's first-parent history the
// error matches ErrNotAncestor.
func (c *Cache) Verify(ctx context.Context, url string, rev Revision, since string, keyRing string) error {
	_, err := c.LastVerified(ctx, url, rev, since, keyRing)
	return err
}

// LastVerified walks the same commits as Verify, oldest first, and returns
// the newest revision up to which every commit verified, so that an
// unverified commit stops the sync at the last verified revision rather
// than failing it outright:
//
//   - every commit verifies: (rev, nil);
//   - some commit fails: (the commit before it — since itself when the first
//     new commit fails, the zero Revision when since is "" — and an
//     *UnverifiedCommitError naming the failing commit);
//   - the check itself cannot run (bad key ring, unknown revision, since not
//     an ancestor): (zero Revision, error).
//
// The returned Revision keeps rev.Ref, since the commit lies on that ref's
// history.
func (c *Cache) LastVerified(ctx context.Context, url string, rev Revision, since string, keyRing string) (Revision, error) {
	r, err := parseRemote(url)
	if err != nil {
		return Revision{}, fmt.Errorf("verify: %w", err)
	}
	last, err := c.lastVerified(ctx, r, rev, since, keyRing)
	c.noteDamage(r, err)
	var uerr *UnverifiedCommitError
	if err != nil && !errors.As(err, &uerr) {
		return Revision{}, fmt.Errorf("verify %s of %s: %w", rev, r.display, err)
	}
	return last, err
}

func (c *Cache) lastVerified(ctx context.Context, r *remote, rev Revision, since, keyRing string) (Revision, error) {
	head, err := rev.hashOf()
	if err != nil {
		return Revision{}, err
	}
	if since != "" && !isHash(since) {
		return Revision{}, invalidf("since %q is not 40 hex digits", since)
	}
	since = strings.ToLower(since)
	keys, err := splitKeyRing(keyRing)
	if err != nil {
		return Revision{}, err
	}
	unlock, err := c.lock(ctx, r, false)
	if err != nil {
		return Revision{}, err
	}
	defer unlock()
	repo, err := c.openRepo(r)
	if err != nil {
		return Revision{}, err
	}
	chain, err := c.firstParentChain(ctx, repo, head, since)
	if err != nil {
		return Revision{}, err
	}
	// chain is newest first; verify oldest first so the answer is "the
	// prefix that verifies".
	for i := len(chain) - 1; i >= 0; i-- {
		if err := ctx.Err(); err != nil {
			return Revision{}, err
		}
		if reason := verifyCommit(chain[i], keys); reason != "" {
			last := Revision{}
			switch {
			case i < len(chain)-1:
				last = Revision{Ref: rev.Ref, Hash: chain[i+1].Hash.String()}
			case since != "":
				last = Revision{Ref: rev.Ref, Hash: since}
			}
			return last, &UnverifiedCommitError{Hash: chain[i].Hash.String(), Reason: reason}
		}
	}
	return Revision{Ref: rev.Ref, Hash: head.String()}, nil
}

// firstParentChain returns head and its first parents down to, not
// including, since (just head when since is "").
func (c *Cache) firstParentChain(ctx context.Context, repo *gogit.Repository, head plumbing.Hash, since string) ([]*object.Commit, error) {
	cm, err := readCommit(repo, head)
	if err != nil {
		return nil, err
	}
	if since == "" {
		return []*object.Commit{cm}, nil
	}
	var chain []*object.Commit
	for cm.Hash.String() != since {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if len(chain) >= c.maxVerifyCommits {
			return nil, fmt.Errorf("%w: more than %d commits since %s", ErrTooLarge, c.maxVerifyCommits, since)
		}
		chain = append(chain, cm)
		if cm.NumParents() == 0 {
			return nil, fmt.Errorf("%w: %s is not on the first-parent history of %s", ErrNotAncestor, since, head)
		}
		parent := cm.ParentHashes[0]
		cm, err = repo.CommitObject(parent)
		if err != nil {
			return nil, damaged(fmt.Errorf("read commit %s: %w", parent, err))
		}
	}
	return chain, nil
}

// splitKeyRing splits concatenated armored key blocks and checks each parses:
// go-crypto reads only the first armored block of a reader, and commit.Verify
// takes one.
func splitKeyRing(keyRing string) ([]string, error) {
	if len(keyRing) > maxKeyRing {
		return nil, invalidf("key ring larger than %d bytes", maxKeyRing)
	}
	const begin, end = "-----BEGIN PGP PUBLIC KEY BLOCK-----", "-----END PGP PUBLIC KEY BLOCK-----"
	var blocks []string
	rest := keyRing
	for {
		i := strings.Index(rest, begin)
		if i < 0 {
			break
		}
		j := strings.Index(rest[i:], end)
		if j < 0 {
			return nil, invalidf("key ring: unterminated armored block")
		}
		block := rest[i : i+j+len(end)]
		if _, err := openpgp.ReadArmoredKeyRing(strings.NewReader(block)); err != nil {
			return nil, invalidf("key ring: %s", err.Error())
		}
		blocks = append(blocks, block+"\n")
		rest = rest[i+j+len(end):]
	}
	if len(blocks) == 0 {
		return nil, invalidf("key ring has no armored public key block")
	}
	return blocks, nil
}

// verifyCommit returns "" if one of the keys verifies cm's signature, or
// why none does.
func verifyCommit(cm *object.Commit, keys []string) string {
	if strings.TrimSpace(cm.PGPSignature) == "" {
		return "commit is not signed"
	}
	var last error
	for _, k := range keys {
		_, err := cm.Verify(k)
		if err == nil {
			return ""
		}
		last = err
	}
	switch {
	case errors.Is(last, pgperrors.ErrUnknownIssuer):
		return "signed by a key not in the key ring"
	case errors.Is(last, object.ErrMultipleSignatures):
		return "commit carries more than one signature"
	}
	return "bad signature: " + last.Error()
}
