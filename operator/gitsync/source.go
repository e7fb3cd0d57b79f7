package gitsync

import (
	"context"
	"errors"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	helmfluxv1alpha1 "github.com/helmflux/helmflux/api/helmflux/v1alpha1"
	"github.com/helmflux/helmflux/operator/gitcreds"
	"github.com/helmflux/helmflux/operator/outcome"
	"github.com/helmflux/helmflux/pkg/git"
)

// reconcileSource fetches the GitSync's ref into the repository cache and,
// when verification is on, finds the newest revision whose commits are signed
// by a trusted key. It sets lastFetchedRevision and the SourceVerified condition.
func (r *Reconciler) reconcileSource(ctx context.Context, s *scope) error {
	obj := s.obj
	auth, err := r.auth(ctx, obj)
	if errors.Is(err, gitcreds.ErrIdentityNotShared) {
		return outcome.Stall(helmfluxv1alpha1.IdentityRefusedReason, fmt.Errorf("spec.url: %w", err))
	}
	if err != nil {
		return outcome.Retry(helmfluxv1alpha1.CredentialsReason, err)
	}
	ctx, cancel := context.WithTimeout(ctx, obj.GetTimeout())
	defer cancel()

	rev, err := r.Git.Fetch(ctx, obj.Spec.URL, refOf(obj), auth)
	switch {
	case errors.Is(err, git.ErrLocalURL):
		return outcome.Stall(helmfluxv1alpha1.LocalURLRefusedReason, fmt.Errorf("spec.url: %w; the operator flag --allow-local-urls allows it", err))
	case errors.Is(err, git.ErrInsecureCredentials):
		return outcome.Stall(helmfluxv1alpha1.InsecureCredentialsReason, fmt.Errorf("spec.url: %w", err))
	case errors.Is(err, git.ErrInvalidInput):
		return outcome.Stall(helmfluxv1alpha1.FetchFailedReason, err)
	case errors.Is(err, git.ErrAuthentication), errors.Is(err, git.ErrUnknownHostKey), errors.Is(err, git.ErrHostKeyMismatch):
		return outcome.Retry(helmfluxv1alpha1.CredentialsReason, err)
	case err != nil:
		return outcome.Retry(helmfluxv1alpha1.FetchFailedReason, err)
	}
	obj.Status.LastFetchedRevision = rev.String()
	s.revision = rev
	if rev.String() != obj.Status.LastAppliedRevision {
		if err := s.markReconciling(); err != nil {
			return outcome.Retry(helmfluxv1alpha1.FetchFailedReason, err)
		}
	}

	if v := obj.Spec.Verify; v != nil && v.Mode != helmfluxv1alpha1.VerifyNone {
		return r.verify(ctx, s, rev)
	}
	conds(obj).Remove(helmfluxv1alpha1.SourceVerifiedCondition)
	return nil
}

// verify moves s.revision back to the newest verified commit. A commit that is
// not signed by a trusted key is never applied, nor anything after it.
func (r *Reconciler) verify(ctx context.Context, s *scope, rev git.Revision) error {
	obj := s.obj
	keyRing, err := r.keyRing(ctx, obj)
	if err != nil {
		return outcome.Retry(helmfluxv1alpha1.VerificationFailedReason, err)
	}
	since := ""
	if obj.Spec.Verify.Mode == helmfluxv1alpha1.VerifyAll {
		if applied, err := git.ParseRevision(obj.Status.LastAppliedRevision); err == nil {
			since = applied.Hash
		}
	}
	last, err := r.Git.LastVerified(ctx, obj.Spec.URL, rev, since, keyRing)
	if errors.Is(err, git.ErrNotAncestor) { // history was rewritten: check the head alone
		last, err = r.Git.LastVerified(ctx, obj.Spec.URL, rev, "", keyRing)
	}
	var unverified *git.UnverifiedCommitError
	switch {
	case errors.As(err, &unverified):
		conds(obj).Set(helmfluxv1alpha1.SourceVerifiedCondition, metav1.ConditionFalse, helmfluxv1alpha1.VerificationFailedReason, err.Error())
		if last.Hash == "" || last.Hash == since {
			return outcome.WaitForChange(helmfluxv1alpha1.VerificationFailedReason,
				fmt.Errorf("nothing applied past %s: %w", orNone(obj.Status.LastAppliedRevision), err))
		}
		s.revision = last
		s.unverified = err
		return nil
	case err != nil:
		return outcome.Retry(helmfluxv1alpha1.VerificationFailedReason, err)
	}
	conds(obj).Set(helmfluxv1alpha1.SourceVerifiedCondition, metav1.ConditionTrue, helmfluxv1alpha1.VerifiedReason, fmt.Sprintf("verified signatures of %s", rev))
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "the start"
	}
	return s
}

func refOf(obj *helmfluxv1alpha1.GitSync) git.Ref {
	if obj.Spec.Ref == nil {
		return git.Ref{}
	}
	return git.Ref{Branch: obj.Spec.Ref.Branch, Tag: obj.Spec.Ref.Tag, SemVer: obj.Spec.Ref.SemVer}
}

// auth reads the GitSync's credentials Secret. Its content never leaves pkg/git.
func (r *Reconciler) auth(ctx context.Context, obj *helmfluxv1alpha1.GitSync) (*git.Auth, error) {
	return gitcreds.Credentials(ctx, r.Client, obj, r.Identity)
}

// keyRing concatenates the armored public keys of the verification Secret.
func (r *Reconciler) keyRing(ctx context.Context, obj *helmfluxv1alpha1.GitSync) (string, error) {
	return gitcreds.KeyRing(ctx, r.Client, obj)
}
