package automation

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	helmv1 "github.com/helmflux/helmflux/api/helm/v1"
	"github.com/helmflux/helmflux/pkg/apply"
	"github.com/helmflux/helmflux/pkg/registry"
	"github.com/helmflux/helmflux/pkg/update"
)

// pullConfig is where a workload's registry logins come from, as the kubelet
// would find them: its own imagePullSecrets, then its ServiceAccount's.
type pullConfig struct {
	namespace      string
	secrets        []string
	serviceAccount string
}

// pullConfigs reads the pull configuration of every workload in files,
// keyed by update.ObjectRef. HelmReleases use their target namespace's
// default ServiceAccount. Unreadable documents are skipped: update.Find
// reports them.
func pullConfigs(files []update.File) map[update.ObjectRef]pullConfig {
	out := map[update.ObjectRef]pullConfig{}
	for _, f := range files {
		docs, err := splitDocs(f.Data)
		if err != nil {
			continue
		}
		for _, doc := range docs {
			u := &unstructured.Unstructured{}
			if err := yaml.Unmarshal(doc, &u.Object); err != nil || u.Object == nil {
				continue
			}
			ns := u.GetNamespace()
			if ns == "" {
				ns = apply.DefaultNamespace
			}
			ref := update.ObjectRef{Kind: u.GetKind(), Namespace: u.GetNamespace(), Name: u.GetName()}
			if u.GetKind() == helmv1.HelmReleaseKind {
				if tn, _, _ := unstructured.NestedString(u.Object, "spec", "targetNamespace"); tn != "" {
					ns = tn
				}
				out[ref] = pullConfig{namespace: ns, serviceAccount: "default"}
				continue
			}
			p, ok := update.PodSpecPath(u.GetKind())
			if !ok {
				continue
			}
			spec, _, _ := unstructured.NestedMap(u.Object, p...)
			pc := pullConfig{namespace: ns, serviceAccount: "default"}
			if sa, ok := spec["serviceAccountName"].(string); ok && sa != "" {
				pc.serviceAccount = sa
			}
			if list, ok := spec["imagePullSecrets"].([]any); ok {
				for _, e := range list {
					if m, ok := e.(map[string]any); ok {
						if n, ok := m["name"].(string); ok && n != "" {
							pc.secrets = append(pc.secrets, n)
						}
					}
				}
			}
			out[ref] = pc
		}
	}
	return out
}

// credentials resolves registry logins for one pass, reading each Secret and
// ServiceAccount once.
type credentials struct {
	c        client.Reader
	fallback registry.Credentials
	// namespace, when set, is the only namespace whose Secrets and
	// ServiceAccounts are read (--no-cross-namespace-refs): the GitSync's.
	namespace string
	secrets   map[client.ObjectKey]registry.Credentials
	accounts  map[client.ObjectKey][]string
}

func newCredentials(c client.Reader, fallback registry.Credentials, namespace string) *credentials {
	return &credentials{c: c, fallback: fallback, namespace: namespace, secrets: map[client.ObjectKey]registry.Credentials{}, accounts: map[client.ObjectKey][]string{}}
}

// forWorkload returns the workload's logins: its imagePullSecrets, its
// ServiceAccount's, then the operator-wide docker config. A Secret that is
// missing or not a docker config is skipped, as the kubelet does; the error
// says which, without its content. A workload outside the only namespace
// read gets the operator-wide config alone, and an error that says so.
func (cr *credentials) forWorkload(ctx context.Context, pc pullConfig) (registry.Credentials, []error) {
	if cr.namespace != "" && pc.namespace != cr.namespace {
		return cr.fallback, []error{fmt.Errorf("%w: the workload's image pull Secrets are in namespace %s, not the GitSync's namespace %s, and are not read (operator flag --no-cross-namespace-refs)", ErrCrossNamespacePullSecret, pc.namespace, cr.namespace)}
	}
	names := append([]string(nil), pc.secrets...)
	var errs []error
	if pc.serviceAccount != "" {
		sa, err := cr.account(ctx, client.ObjectKey{Namespace: pc.namespace, Name: pc.serviceAccount})
		if err != nil {
			errs = append(errs, err)
		}
		names = append(names, sa...)
	}
	var out registry.Credentials
	for _, n := range names {
		c, err := cr.secret(ctx, client.ObjectKey{Namespace: pc.namespace, Name: n})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = out.Merge(c)
	}
	return out.Merge(cr.fallback), errs
}

func (cr *credentials) account(ctx context.Context, key client.ObjectKey) ([]string, error) {
	if names, ok := cr.accounts[key]; ok {
		return names, nil
	}
	sa := &corev1.ServiceAccount{}
	err := cr.c.Get(ctx, key, sa)
	if apierrors.IsNotFound(err) {
		cr.accounts[key] = nil
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read ServiceAccount %s: %w", key, err)
	}
	var names []string // in the listed order, as the kubelet tries them
	for _, s := range sa.ImagePullSecrets {
		names = append(names, s.Name)
	}
	cr.accounts[key] = names
	return names, nil
}

func (cr *credentials) secret(ctx context.Context, key client.ObjectKey) (registry.Credentials, error) {
	if c, ok := cr.secrets[key]; ok {
		return c, nil
	}
	s := &corev1.Secret{}
	if err := cr.c.Get(ctx, key, s); err != nil {
		cr.secrets[key] = registry.Credentials{}
		return registry.Credentials{}, fmt.Errorf("read image pull Secret %s: %w", key, err)
	}
	data := s.Data[corev1.DockerConfigJsonKey]
	if len(data) == 0 {
		data = s.Data[corev1.DockerConfigKey]
	}
	c, err := registry.ParseDockerConfig(data)
	if err != nil {
		cr.secrets[key] = registry.Credentials{}
		return registry.Credentials{}, fmt.Errorf("image pull Secret %s: %w", key, err)
	}
	cr.secrets[key] = c
	return c, nil
}

// ErrCrossNamespacePullSecret marks a workload whose image pull Secrets
// were not read because they are in another namespace than its GitSync's.
var ErrCrossNamespacePullSecret = errors.New("cross-namespace image pull Secrets refused")

// splitDocs splits a multi-document YAML file.
func splitDocs(data []byte) ([][]byte, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var docs [][]byte
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return docs, err
		}
		docs = append(docs, doc)
	}
}
