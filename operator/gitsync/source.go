package gitsync

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	helmfluxv1alpha1 "github.com/helmflux/helmflux/api/helmflux/v1alpha1"
	"github.com/helmflux/helmflux/pkg/git"
)

// reconcileSource fetches the GitSync's ref into the repository cache and,
// when verification is on, finds the newest revision whose commits are signed
// by a trusted key. It sets lastFetchedRevision and the SourceVerified condition.
func (r *Reconciler) reconcileSource(ctx context.Context, s *scope) error {
	obj := s.obj
	auth, err := r.auth(ctx, obj)
	if err != nil {
		return retryable(helmfluxv1alpha1.CredentialsReason, err)
	}
	ctx, cancel := context.WithTimeout(ctx, obj.GetTimeout())
	defer cancel()

	rev, err := r.Git.Fetch(ctx, obj.Spec.URL, refOf(obj), auth)
	switch {
	case errors.Is(err, git.ErrInvalidInput):
		return stalled(helmfluxv1alpha1.FetchFailedReason, err)
	case errors.Is(err, git.ErrAuthentication), errors.Is(err, git.ErrUnknownHostKey), errors.Is(err, git.ErrHostKeyMismatch):
		return retryable(helmfluxv1alpha1.CredentialsReason, err)
	case err != nil:
		return retryable(helmfluxv1alpha1.FetchFailedReason, err)
	}
	obj.Status.LastFetchedRevision = rev.String()
	s.revision = rev
	if rev.String() != obj.Status.LastAppliedRevision {
		if err := s.markReconciling(); err != nil {
			return retryable(helmfluxv1alpha1.FetchFailedReason, err)
		}
	}

	if v := obj.Spec.Verify; v != nil && v.Mode != helmfluxv1alpha1.VerifyNone {
		return r.verify(ctx, s, rev)
	}
	apimeta.RemoveStatusCondition(&obj.Status.Conditions, helmfluxv1alpha1.SourceVerifiedCondition)
	return nil
}

// verify moves s.revision back to the newest verified commit. A commit that is
// not signed by a trusted key is never applied, nor anything after it.
func (r *Reconciler) verify(ctx context.Context, s *scope, rev git.Revision) error {
	obj := s.obj
	keyRing, err := r.keyRing(ctx, obj)
	if err != nil {
		return retryable(helmfluxv1alpha1.VerificationFailedReason, err)
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
		setVerified(obj, metav1.ConditionFalse, helmfluxv1alpha1.VerificationFailedReason, err.Error())
		if last.Hash == "" || last.Hash == since {
			return waitForChange(helmfluxv1alpha1.VerificationFailedReason,
				fmt.Errorf("nothing applied past %s: %w", orNone(obj.Status.LastAppliedRevision), err))
		}
		s.revision = last
		s.unverified = err
		return nil
	case err != nil:
		return retryable(helmfluxv1alpha1.VerificationFailedReason, err)
	}
	setVerified(obj, metav1.ConditionTrue, "Verified", fmt.Sprintf("verified signatures of %s", rev))
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "the start"
	}
	return s
}

func setVerified(obj *helmfluxv1alpha1.GitSync, status metav1.ConditionStatus, reason, msg string) {
	apimeta.SetStatusCondition(&obj.Status.Conditions, metav1.Condition{
		Type: helmfluxv1alpha1.SourceVerifiedCondition, Status: status, Reason: reason, Message: msg,
		ObservedGeneration: obj.Generation,
	})
}

func refOf(obj *helmfluxv1alpha1.GitSync) git.Ref {
	if obj.Spec.Ref == nil {
		return git.Ref{}
	}
	return git.Ref{Branch: obj.Spec.Ref.Branch, Tag: obj.Spec.Ref.Tag, SemVer: obj.Spec.Ref.SemVer}
}

// auth reads the GitSync's credentials Secret. Its content never leaves pkg/git.
func (r *Reconciler) auth(ctx context.Context, obj *helmfluxv1alpha1.GitSync) (*git.Auth, error) {
	return Credentials(ctx, r.Client, obj)
}

// Credentials reads the git credentials of a GitSync from its secretRef, for
// every controller that talks to its repository. Errors never hold secret
// values.
func Credentials(ctx context.Context, c client.Reader, obj *helmfluxv1alpha1.GitSync) (*git.Auth, error) {
	if obj.Spec.SecretRef == nil {
		return &git.Auth{InsecureIgnoreHostKey: obj.Spec.InsecureIgnoreHostKey}, nil
	}
	secret, err := readSecret(ctx, c, obj.Namespace, obj.Spec.SecretRef.Name)
	if err != nil {
		return nil, err
	}
	auth, err := git.AuthFromSecret(secret.Data)
	if err != nil {
		return nil, fmt.Errorf("credentials Secret %s: %w", secret.Name, err)
	}
	auth.InsecureIgnoreHostKey = obj.Spec.InsecureIgnoreHostKey
	return auth, nil
}

// keyRing concatenates the armored public keys of the verification Secret.
func (r *Reconciler) keyRing(ctx context.Context, obj *helmfluxv1alpha1.GitSync) (string, error) {
	return KeyRing(ctx, r.Client, obj)
}

// KeyRing concatenates the armored public keys of a GitSync's verification
// Secret, for every controller that must trust only signed commits.
func KeyRing(ctx context.Context, c client.Reader, obj *helmfluxv1alpha1.GitSync) (string, error) {
	if obj.Spec.Verify == nil || obj.Spec.Verify.SecretRef == nil {
		return "", errors.New("verify.secretRef is not set")
	}
	secret, err := readSecret(ctx, c, obj.Namespace, obj.Spec.Verify.SecretRef.Name)
	if err != nil {
		return "", err
	}
	keys := make([]string, 0, len(secret.Data))
	for k := range secret.Data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		b.Write(secret.Data[k])
		b.WriteString("\n")
	}
	return b.String(), nil
}

func readSecret(ctx context.Context, c client.Reader, namespace, name string) (*corev1.Secret, error) {
	secret := &corev1.Secret{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, secret); err != nil {
		return nil, fmt.Errorf("read Secret %s: %w", name, err)
	}
	return secret, nil
}
