package helmrelease

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"helm.sh/helm/v3/pkg/chart"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	helmv1 "github.com/helmflux/helmflux/api/helm/v1"
	"github.com/helmflux/helmflux/operator/gitcreds"
	"github.com/helmflux/helmflux/operator/outcome"
	"github.com/helmflux/helmflux/pkg/git"
	"github.com/helmflux/helmflux/pkg/helm"
)

// reconcileChart resolves the chart to a version and digest without
// downloading it, and arranges for it to be loaded when an action needs it.
// It writes the ChartFetched condition.
func (r *Reconciler) reconcileChart(ctx context.Context, s *scope) error {
	obj := s.obj
	src, err := r.chartSource(ctx, obj)
	if err != nil {
		conds(obj).Set(helmv1.ChartFetchedCondition, metav1.ConditionFalse, helmv1.ChartFetchFailedReason, err.Error())
		return err
	}
	if err := r.verifyChart(ctx, obj, &src); err != nil {
		return err
	}
	ref, err := r.Charts.Resolve(ctx, src)
	if errors.Is(err, git.ErrRefNotFound) && src.Ref.Branch != "" {
		// The Helm Operator's ref names a branch or a tag.
		src.Ref = git.Ref{Tag: src.Ref.Branch}
		ref, err = r.Charts.Resolve(ctx, src)
	}
	if err != nil {
		obj.Status.Phase = helmv1.PhaseChartFetchFailed
		conds(obj).Set(helmv1.ChartFetchedCondition, metav1.ConditionFalse, chartFailReason(err), err.Error())
		return chartError(err, chartField(obj))
	}
	s.chartRef = ref
	var (
		once   sync.Once
		loaded *chart.Chart
		lerr   error
	)
	s.loadChart = func(ctx context.Context) (*chart.Chart, error) {
		once.Do(func() { loaded, lerr = r.Charts.Load(ctx, ref) })
		if lerr != nil {
			err := fmt.Errorf("load chart %s %s: %w", ref.Name, ref.Version, lerr)
			obj.Status.Phase = helmv1.PhaseChartFetchFailed
			conds(obj).Set(helmv1.ChartFetchedCondition, metav1.ConditionFalse, chartFailReason(err), err.Error())
			return nil, chartError(err, chartField(obj))
		}
		return loaded, nil
	}
	conds(obj).Set(helmv1.ChartFetchedCondition, metav1.ConditionTrue, helmv1.ChartFetchedReason,
		fmt.Sprintf("chart %s %s (%s)", ref.Name, ref.Version, ref.Revision))
	return nil
}

// chartError maps a chart failure to what helps: a spec change for a
// source helmflux cannot use, a new chart for a refused one, a retry for the
// network. field names the spec field of the source, for the refusals.
func chartError(err error, field string) error {
	switch {
	case errors.Is(err, helm.ErrUnverified): // before ErrInvalidInput: a bad key ring is no spec problem
		return outcome.WaitForChange(helmv1.ChartVerificationFailedReason, err)
	case errors.Is(err, git.ErrLocalURL): // helm.ErrLocalURL too: a repository, an index's URL or a redirect
		return outcome.Stall(helmv1.LocalURLRefusedReason, fmt.Errorf("%s: %w; the operator flag --allow-local-urls allows it", field, err))
	case errors.Is(err, git.ErrInsecureCredentials): // helm.ErrInsecureCredentials too
		return outcome.Stall(helmv1.InsecureCredentialsReason, fmt.Errorf("%s: %w", field, err))
	case errors.Is(err, helm.ErrInvalidSource), errors.Is(err, git.ErrInvalidInput), errors.Is(err, git.ErrPathEscapes):
		return outcome.Stall(helmv1.ChartFetchFailedReason, err)
	case errors.Is(err, helm.ErrChartNotFound), errors.Is(err, helm.ErrHostileChart), errors.Is(err, helm.ErrTooLarge),
		errors.Is(err, helm.ErrInvalidChart), errors.Is(err, helm.ErrDigestMismatch):
		return outcome.WaitForChange(helmv1.ChartFetchFailedReason, err)
	}
	return outcome.Retry(helmv1.ChartFetchFailedReason, err)
}

// chartField names the spec field of obj's chart source.
func chartField(obj *helmv1.HelmRelease) string {
	if obj.Spec.Chart.IsGit() {
		return "chart.git"
	}
	return "chart.repository"
}

// chartSource turns the spec's chart into pkg/helm's source, with credentials.
func (r *Reconciler) chartSource(ctx context.Context, obj *helmv1.HelmRelease) (helm.ChartSource, error) {
	c := obj.Spec.Chart
	if c.IsGit() {
		src := helm.ChartSource{Git: c.Git, Ref: git.Ref{Branch: c.GetRef()}, Path: c.Path, SkipDepUpdate: c.SkipDepUpdate,
			AllowInsecureHTTP: c.AllowInsecureHTTP}
		if c.SecretRef != nil {
			ns, err := r.refNamespace(obj, c.SecretRef.Namespace)
			if err != nil {
				return src, outcome.Reclassify(fmt.Errorf("chart.secretRef: %w", err), helmv1.InvalidSpecReason)
			}
			secret := &corev1.Secret{}
			if err := r.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: c.SecretRef.Name}, secret); err != nil {
				return src, outcome.Retry(helmv1.ChartFetchFailedReason, fmt.Errorf("read chart.secretRef Secret %s: %w", c.SecretRef.Name, err))
			}
			auth, err := git.AuthFromSecret(secret.Data)
			if err != nil {
				return src, outcome.WaitForChange(helmv1.ChartFetchFailedReason, fmt.Errorf("chart.secretRef Secret %s: %w", c.SecretRef.Name, err))
			}
			src.GitAuth = auth
		} else {
			auth, err := r.Identity.Auth(ctx, r.Client, obj.Namespace, c.Git)
			if errors.Is(err, gitcreds.ErrIdentityNotShared) {
				return src, outcome.Stall(helmv1.IdentityRefusedReason, fmt.Errorf("chart.git: %w", err))
			}
			if err != nil {
				return src, outcome.Retry(helmv1.ChartFetchFailedReason, fmt.Errorf("chart.git: %w", err))
			}
			src.GitAuth = auth
		}
		return src, nil
	}
	src := helm.ChartSource{Repository: c.Repository, Name: c.Name, Version: c.Version, AllowInsecureHTTP: c.AllowInsecureHTTP}
	if c.ChartPullSecret != nil {
		secret := &corev1.Secret{}
		if err := r.Client.Get(ctx, client.ObjectKey{Namespace: obj.Namespace, Name: c.ChartPullSecret.Name}, secret); err != nil {
			return src, outcome.Retry(helmv1.ChartFetchFailedReason, fmt.Errorf("read chartPullSecret %s: %w", c.ChartPullSecret.Name, err))
		}
		auth, err := repoAuth(secret, c.Repository)
		if err != nil {
			return src, outcome.WaitForChange(helmv1.ChartFetchFailedReason, fmt.Errorf("chartPullSecret %s: %w", c.ChartPullSecret.Name, err))
		}
		src.RepoAuth = auth
	}
	return src, nil
}

// refNamespace returns the namespace of a reference, refusing another
// namespace than the HelmRelease's unless the operator allows it. The
// refusal is a Stall with reason CrossNamespaceRef.
func (r *Reconciler) refNamespace(obj *helmv1.HelmRelease, ns string) (string, error) {
	if ns == "" || ns == obj.Namespace {
		return obj.Namespace, nil
	}
	if !r.AllowCrossNamespaceRefs || r.NoCrossNamespaceRefs {
		flag := "operator flag --allow-cross-namespace-refs allows them"
		if r.NoCrossNamespaceRefs {
			flag = "operator flag --no-cross-namespace-refs"
		}
		return "", outcome.Stall(helmv1.CrossNamespaceRefReason,
			fmt.Errorf("namespace %q is not the HelmRelease's namespace %q; cross-namespace references are disabled (%s)", ns, obj.Namespace, flag))
	}
	return ns, nil
}

// checkTargetNamespace refuses, with --no-cross-namespace-refs, a release
// installed into another namespace than the HelmRelease's own: a tenant's
// HelmRelease must not place objects (nor Helm's release records) where
// its namespace's owners do not rule.
func (r *Reconciler) checkTargetNamespace(obj *helmv1.HelmRelease) error {
	if !r.NoCrossNamespaceRefs || obj.GetTargetNamespace() == obj.Namespace {
		return nil
	}
	return outcome.Stall(helmv1.CrossNamespaceRefReason,
		fmt.Errorf("targetNamespace %q is not the HelmRelease's namespace %q; cross-namespace targets are disabled (operator flag --no-cross-namespace-refs)", obj.GetTargetNamespace(), obj.Namespace))
}

// repositoriesFile is the part of Helm's repositories.yaml that a
// chartPullSecret holds, as the Helm Operator read it.
type repositoriesFile struct {
	Repositories []struct {
		URL                   string `json:"url"`
		Username              string `json:"username"`
		Password              string `json:"password"`
		InsecureSkipTLSVerify bool   `json:"insecure_skip_tls_verify"`
	} `json:"repositories"`
}

// repoAuth reads repository credentials from a chartPullSecret: either a
// repositories.yaml key (the Helm Operator's format) with an entry for the
// repository, or username/password and caFile/certFile/keyFile keys.
func repoAuth(secret *corev1.Secret, repository string) (*helm.RepoAuth, error) {
	auth := &helm.RepoAuth{
		Username: string(secret.Data["username"]),
		Password: string(secret.Data["password"]),
		CAFile:   secret.Data["caFile"],
		CertFile: secret.Data["certFile"],
		KeyFile:  secret.Data["keyFile"],
	}
	if raw, ok := secret.Data["repositories.yaml"]; ok {
		var f repositoriesFile
		if err := yaml.Unmarshal(raw, &f); err != nil {
			return nil, errors.New("repositories.yaml is not valid YAML")
		}
		found := false
		for _, e := range f.Repositories {
			if strings.TrimSuffix(e.URL, "/") == strings.TrimSuffix(repository, "/") {
				auth.Username, auth.Password, auth.InsecureSkipTLSVerify = e.Username, e.Password, e.InsecureSkipTLSVerify
				found = true
				break
			}
		}
		if !found {
			return nil, fmt.Errorf("repositories.yaml has no entry for %s", repository)
		}
	}
	if (auth.Username == "") != (auth.Password == "") {
		return nil, errors.New("set both username and password, or neither")
	}
	if (len(auth.CertFile) == 0) != (len(auth.KeyFile) == 0) {
		return nil, errors.New("set both certFile and keyFile, or neither")
	}
	return auth, nil
}
