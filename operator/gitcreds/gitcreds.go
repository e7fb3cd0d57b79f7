// Package gitcreds reads what a GitSync names for talking to its
// repository — the credentials Secret, the verification keys and how to
// write back — for everything that does (sync, image automation and the
// fluxd API), so that none of them imports another. Errors never hold
// secret values.
package gitcreds

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	helmfluxv1alpha1 "github.com/helmflux/helmflux/api/helmflux/v1alpha1"
	"github.com/helmflux/helmflux/pkg/git"
)

// Identity names the Secret of the operator's own SSH key (fluxctl
// identity): the git identity, over SSH, of GitSyncs and chart.git sources
// that name no secret, as fluxd's and the Helm Operator's deploy key was.
// The zero Identity is none.
type Identity struct {
	client.ObjectKey
	// OwnNamespaceOnly keeps the key from objects of other namespaces than
	// the Secret's (--shared-git-identity=false): in a shared cluster a
	// tenant must not reach, with the operator's key, the repositories that
	// key was added to for someone else.
	OwnNamespaceOnly bool
}

// ErrIdentityNotShared means an object outside the identity's namespace
// asked for the operator's SSH key while it serves only its own namespace.
var ErrIdentityNotShared = errors.New("the operator's SSH identity is not shared with other namespaces")

// Auth returns the identity's credentials for url, asked for by an object
// of namespace: nil for a URL that is not SSH, or when there is no identity.
func (id Identity) Auth(ctx context.Context, c client.Reader, namespace, url string) (*git.Auth, error) {
	if id.Name == "" || !git.IsSSH(url) {
		return nil, nil
	}
	if id.OwnNamespaceOnly && namespace != id.Namespace {
		return nil, fmt.Errorf("%w: it serves namespace %s only (operator flag --shared-git-identity=false); name a Secret with this namespace's own deploy key in secretRef", ErrIdentityNotShared, id.Namespace)
	}
	secret := &corev1.Secret{}
	if err := c.Get(ctx, id.ObjectKey, secret); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("no secretRef, and the operator's SSH identity %s does not exist yet: run `fluxctl identity` and add the key to the repository, or name a Secret in secretRef", id.ObjectKey)
		}
		return nil, fmt.Errorf("read the operator's SSH identity %s: %w", id.ObjectKey, err)
	}
	auth, err := git.AuthFromSecret(secret.Data)
	if err != nil {
		return nil, fmt.Errorf("the operator's SSH identity %s: %w", id.ObjectKey, err)
	}
	return auth, nil
}

// Credentials reads the git credentials of a GitSync from its secretRef, or
// takes the operator's identity for an SSH URL when it names none, for
// everything that talks to its repository. Errors never hold secret values.
func Credentials(ctx context.Context, c client.Reader, obj *helmfluxv1alpha1.GitSync, id Identity) (*git.Auth, error) {
	if obj.Spec.SecretRef == nil {
		auth, err := id.Auth(ctx, c, obj.Namespace, obj.Spec.URL)
		if err != nil || auth == nil {
			return &git.Auth{InsecureIgnoreHostKey: obj.Spec.InsecureIgnoreHostKey, AllowInsecureHTTP: obj.Spec.AllowInsecureHTTP}, err
		}
		auth.InsecureIgnoreHostKey = obj.Spec.InsecureIgnoreHostKey
		auth.AllowInsecureHTTP = obj.Spec.AllowInsecureHTTP
		return auth, nil
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
	auth.AllowInsecureHTTP = obj.Spec.AllowInsecureHTTP
	return auth, nil
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

// Default commit identity, as documented for writeBack.author.
const (
	DefaultAuthorName  = "helmflux"
	DefaultAuthorEmail = "helmflux@users.noreply.helmflux.dev"
)

// Keys of the writeBack.signingKey Secret.
const (
	SigningKeyKey        = "git.asc"
	SigningPassphraseKey = "passphrase"
)

// PushOptions says how to write to a GitSync's repository, as its
// writeBack asks: the branch followed and the push branch, the author, and
// the signing key (read only when the GitSync may write). Every writer —
// image automation and the fluxd API's jobs — commits the same way.
func PushOptions(ctx context.Context, c client.Reader, obj *helmfluxv1alpha1.GitSync, auth *git.Auth) (git.PushOptions, error) {
	opts := git.PushOptions{
		Auth:   auth,
		Author: git.Signature{Name: DefaultAuthorName, Email: DefaultAuthorEmail},
	}
	if obj.Spec.Ref != nil {
		opts.Branch = obj.Spec.Ref.Branch
	}
	wb := obj.Spec.WriteBack
	if wb == nil {
		return opts, nil
	}
	opts.PushBranch = wb.PushBranch
	if wb.Author != nil {
		opts.Author = git.Signature{Name: wb.Author.Name, Email: wb.Author.Email}
	}
	if wb.SigningKey != nil && !obj.Spec.ReadOnly {
		s := &corev1.Secret{}
		err := c.Get(ctx, client.ObjectKey{Namespace: obj.Namespace, Name: wb.SigningKey.Name}, s)
		if err != nil {
			return opts, fmt.Errorf("read signing key Secret %s: %w", wb.SigningKey.Name, err)
		}
		opts.SigningKey, opts.SigningPassphrase = s.Data[SigningKeyKey], s.Data[SigningPassphraseKey]
		if len(opts.SigningKey) == 0 {
			return opts, fmt.Errorf("signing key Secret %s has no key %q", wb.SigningKey.Name, SigningKeyKey)
		}
	}
	return opts, nil
}
