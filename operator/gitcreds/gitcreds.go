// Package gitcreds reads what a GitSync names for talking to its
// repository — the credentials Secret and the verification keys — for every
// controller that does (sync and image automation), so that none of them
// imports another controller. Errors never hold secret values.
package gitcreds

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	helmfluxv1alpha1 "github.com/helmflux/helmflux/api/helmflux/v1alpha1"
	"github.com/helmflux/helmflux/pkg/git"
)

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
