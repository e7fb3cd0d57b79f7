package fluxapi

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/fluxcd/pkg/apis/meta"

	helmv1 "github.com/helmflux/helmflux/api/helm/v1"
	helmfluxv1alpha1 "github.com/helmflux/helmflux/api/helmflux/v1alpha1"
	"github.com/helmflux/helmflux/operator/inventory"
	"github.com/helmflux/helmflux/pkg/apply"
	"github.com/helmflux/helmflux/pkg/git"
	"github.com/helmflux/helmflux/pkg/update"
)

// Cluster finds the workloads of every GitSync: the Deployments,
// StatefulSets, DaemonSets, CronJobs and HelmReleases its last apply made.
type Cluster struct {
	// Client reads GitSyncs and HelmReleases (the manager's cache) and
	// inventory ConfigMaps.
	Client client.Client
	// Reader reads workloads live, so the API does not cache every
	// Deployment of the cluster, and GitSyncs whose inventory ConfigMap
	// seems newer than their cached status (inventory.Load).
	Reader client.Reader
	// Git reads the values files of HelmReleases (valuesFrom[].gitFileRef)
	// at the revision their GitSync applied, for the images in them; nil
	// lists only the images in spec.values.
	Git *git.Cache
}

// inventory returns the entries of gs's inventory. One whose ConfigMap is
// gone or forged lists nothing until the GitSync's next apply writes it
// again, rather than failing every listing of the cluster.
func (c *Cluster) inventory(ctx context.Context, gs *helmfluxv1alpha1.GitSync) ([]inventory.Entry, error) {
	entries, err := inventory.Load(ctx, c.Reader, gs)
	var untrusted *inventory.UntrustedError
	if errors.As(err, &untrusted) {
		return nil, nil
	}
	return entries, err
}

// maxValuesFile bounds a values file read for its images, as the
// HelmRelease controller bounds it.
const maxValuesFile = 4 << 20

// workloadKinds are the kinds the API lists, by the lower-case name IDs use.
var workloadKinds = map[string]struct {
	group, kind string
}{
	"deployment":  {"apps", "Deployment"},
	"statefulset": {"apps", "StatefulSet"},
	"daemonset":   {"apps", "DaemonSet"},
	"cronjob":     {"batch", "CronJob"},
	"helmrelease": {helmv1.GroupVersion.Group, helmv1.HelmReleaseKind},
}

// kindName returns the lower-case ID kind of a group and kind, "" when the
// API does not list it.
func kindName(group, kind string) string {
	for name, k := range workloadKinds {
		if k.group == group && k.kind == kind {
			return name
		}
	}
	return ""
}

// clusterNamespace stands for "no namespace" in IDs, as in fluxd.
const clusterNamespace = "<cluster>"

// ID is a parsed workload ID.
type ID struct {
	Namespace, Kind, Name string
	// legacy IDs ("ns/name") match a workload of any kind.
	legacy bool
}

// ParseID reads "<namespace>:<kind>/<name>" or fluxd's legacy "<ns>/<name>".
func ParseID(s string) (ID, error) {
	if ns, rest, ok := strings.Cut(s, ":"); ok {
		kind, name, ok := strings.Cut(rest, "/")
		if !ok || ns == "" || kind == "" || name == "" || strings.ContainsAny(name, "/:") {
			return ID{}, fmt.Errorf("invalid workload ID %q: want <namespace>:<kind>/<name>", s)
		}
		if ns == clusterNamespace {
			ns = ""
		}
		return ID{Namespace: ns, Kind: strings.ToLower(kind), Name: name}, nil
	}
	ns, name, ok := strings.Cut(s, "/")
	if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
		return ID{}, fmt.Errorf("invalid workload ID %q: want <namespace>:<kind>/<name>", s)
	}
	return ID{Namespace: ns, Kind: "deployment", Name: name, legacy: true}, nil
}

func (id ID) String() string {
	ns := id.Namespace
	if ns == "" {
		ns = clusterNamespace
	}
	return ns + ":" + id.Kind + "/" + id.Name
}

// matches reports whether a workload with ID w is the one id names.
func (id ID) matches(w ID) bool {
	return id.Namespace == w.Namespace && id.Name == w.Name && (id.Kind == w.Kind || id.legacy)
}

// workload is one workload as the API reports it.
type workload struct {
	id          ID
	gitSync     *helmfluxv1alpha1.GitSync
	labels      map[string]string
	annotations map[string]string
	containers  []workloadContainer
	status      string
	rollout     Rollout
	antecedent  string
	syncError   string
}

type workloadContainer struct{ name, image string }

// filter selects workloads: by namespace ("" for all) and, when ids is
// not empty, by ID.
type filter struct {
	namespace string
	ids       []ID
}

func (f filter) wants(id ID) bool {
	if f.namespace != "" && id.Namespace != f.namespace {
		return false
	}
	if len(f.ids) == 0 {
		return true
	}
	for _, want := range f.ids {
		if want.matches(id) {
			return true
		}
	}
	return false
}

// workloads returns the workloads of every GitSync that f wants, sorted
// by ID. A workload in two GitSyncs' inventories is reported once, for the
// first GitSync by namespace and name.
func (c *Cluster) workloads(ctx context.Context, f filter) ([]workload, error) {
	list, err := listGitSyncs(ctx, c.Client)
	if err != nil {
		return nil, err
	}
	type wanted struct {
		id    ID
		gs    *helmfluxv1alpha1.GitSync
		entry apply.ObjectID
	}
	seen := map[string]bool{}
	var want []wanted
	for i := range list {
		gs := &list[i]
		entries, err := c.inventory(ctx, gs)
		if err != nil {
			return nil, fmt.Errorf("GitSync %s/%s: %w", gs.Namespace, gs.Name, err)
		}
		for _, e := range entries {
			kind := kindName(e.ID.Group, e.ID.Kind)
			id := ID{Namespace: e.ID.Namespace, Kind: kind, Name: e.ID.Name}
			if kind == "" || seen[id.String()] || !f.wants(id) {
				continue
			}
			seen[id.String()] = true
			want = append(want, wanted{id: id, gs: gs, entry: e.ID})
		}
	}
	ids := make([]ID, len(want))
	for i, w := range want {
		ids[i] = w.id
	}
	objs, err := c.fetch(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := make([]workload, 0, len(want))
	for _, wt := range want {
		obj, ok := objs[wt.id.String()]
		if !ok {
			continue // pruned or deleted since the apply
		}
		w := c.fromObject(ctx, wt.id, obj)
		w.gitSync = wt.gs
		w.syncError = syncError(wt.gs, wt.entry)
		out = append(out, w)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id.String() < out[j].id.String() })
	return out, nil
}

// listAtLeast is how many workloads of one kind in one namespace are read
// with one List instead of a Get each: a GitSync of 1,000 Deployments is
// two requests, not 1,001 (which the operator's client-side rate limit
// spread over ten seconds).
const listAtLeast = 4

// fetch reads the live objects of ids, by ID: one List (served from the API
// server's watch cache) per namespace and kind with at least listAtLeast
// of them, a Get for each of the others. An object that is gone is left
// out. HelmReleases come from the manager's cache.
func (c *Cluster) fetch(ctx context.Context, ids []ID) (map[string]client.Object, error) {
	groups := map[[2]string][]ID{}
	var keys [][2]string
	for _, id := range ids {
		k := [2]string{id.Namespace, id.Kind}
		if groups[k] == nil {
			keys = append(keys, k)
		}
		groups[k] = append(groups[k], id)
	}
	out := map[string]client.Object{}
	for _, k := range keys {
		group := groups[k]
		api, ok := kindAPIs[k[1]]
		if !ok {
			return nil, fmt.Errorf("workload kind %q is not listed", k[1])
		}
		reader := c.Reader
		if api.cached {
			reader = c.Client
		}
		if len(group) < listAtLeast {
			for _, id := range group {
				obj := api.object()
				err := reader.Get(ctx, client.ObjectKey{Namespace: id.Namespace, Name: id.Name}, obj)
				if apierrors.IsNotFound(err) {
					continue
				}
				if err != nil {
					return nil, err
				}
				out[id.String()] = obj
			}
			continue
		}
		list := api.list()
		opts := []client.ListOption{client.InNamespace(k[0])}
		if !api.cached {
			opts = append(opts, &client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: "0"}})
		}
		if err := reader.List(ctx, list, opts...); err != nil {
			return nil, err
		}
		items, err := apimeta.ExtractList(list)
		if err != nil {
			return nil, err
		}
		byName := make(map[string]client.Object, len(items))
		for _, it := range items {
			if obj, ok := it.(client.Object); ok {
				byName[obj.GetName()] = obj
			}
		}
		for _, id := range group {
			if obj, ok := byName[id.Name]; ok {
				out[id.String()] = obj
			}
		}
	}
	return out, nil
}

// kindAPIs are the Go types of each listed kind; cached kinds are read
// from the manager's cache, the others live.
var kindAPIs = map[string]struct {
	object func() client.Object
	list   func() client.ObjectList
	cached bool
}{
	"deployment":  {func() client.Object { return &appsv1.Deployment{} }, func() client.ObjectList { return &appsv1.DeploymentList{} }, false},
	"statefulset": {func() client.Object { return &appsv1.StatefulSet{} }, func() client.ObjectList { return &appsv1.StatefulSetList{} }, false},
	"daemonset":   {func() client.Object { return &appsv1.DaemonSet{} }, func() client.ObjectList { return &appsv1.DaemonSetList{} }, false},
	"cronjob":     {func() client.Object { return &batchv1.CronJob{} }, func() client.ObjectList { return &batchv1.CronJobList{} }, false},
	"helmrelease": {func() client.Object { return &helmv1.HelmRelease{} }, func() client.ObjectList { return &helmv1.HelmReleaseList{} }, true},
}

// listGitSyncs lists the GitSyncs by namespace and name; the first is the
// one fluxd's single-repository routes (sync, git-repo-config) speak for.
func listGitSyncs(ctx context.Context, c client.Reader) ([]helmfluxv1alpha1.GitSync, error) {
	var list helmfluxv1alpha1.GitSyncList
	if err := c.List(ctx, &list); err != nil {
		return nil, fmt.Errorf("list GitSyncs: %w", err)
	}
	sort.Slice(list.Items, func(i, j int) bool {
		a, b := list.Items[i], list.Items[j]
		return a.Namespace+"/"+a.Name < b.Namespace+"/"+b.Name
	})
	return list.Items, nil
}

// syncError is the GitSync's failure for one object, if its last attempt
// recorded one.
func syncError(gs *helmfluxv1alpha1.GitSync, id apply.ObjectID) string {
	for _, f := range gs.Status.Failures {
		if f.Object == id.Display() {
			return f.Message
		}
	}
	return ""
}

// fromObject is one workload as the API reports it, from its live object.
func (c *Cluster) fromObject(ctx context.Context, id ID, obj client.Object) workload {
	w := workload{id: id}
	var tmpl *corev1.PodTemplateSpec
	switch o := obj.(type) {
	case *appsv1.Deployment:
		tmpl = &o.Spec.Template
		w.status, w.rollout = deploymentRollout(o)
	case *appsv1.StatefulSet:
		tmpl = &o.Spec.Template
		w.status, w.rollout = statefulSetRollout(o)
	case *appsv1.DaemonSet:
		tmpl = &o.Spec.Template
		w.status, w.rollout = daemonSetRollout(o)
	case *batchv1.CronJob:
		tmpl = &o.Spec.JobTemplate.Spec.Template
		w.status = StatusReady
	case *helmv1.HelmRelease:
		w.status, w.rollout = helmReleaseRollout(o)
		w.containers = c.helmReleaseContainers(ctx, o)
	}
	w.labels, w.annotations = obj.GetLabels(), obj.GetAnnotations()
	w.antecedent = w.annotations[helmv1.AntecedentAnnotation]
	if tmpl != nil {
		for _, ct := range append(append([]corev1.Container(nil), tmpl.Spec.InitContainers...), tmpl.Spec.Containers...) {
			w.containers = append(w.containers, workloadContainer{name: ct.Name, image: ct.Image})
		}
	}
	return w
}

// helmReleaseContainers finds a HelmRelease's images in its values as image
// automation does (the Flux v1 value shapes and mapping annotations): in
// spec.values, and in the values files it reads from git, at the revision
// its GitSync applied.
func (c *Cluster) helmReleaseContainers(ctx context.Context, hr *helmv1.HelmRelease) []workloadContainer {
	obj := hr.DeepCopy()
	obj.APIVersion, obj.Kind = helmv1.GroupVersion.String(), helmv1.HelmReleaseKind
	obj.Status = helmv1.HelmReleaseStatus{}
	obj.ManagedFields = nil
	b, err := yaml.Marshal(obj)
	if err != nil {
		return nil
	}
	files := append([]update.File{{Path: "helmrelease.yaml", Data: b}}, c.valuesFiles(ctx, hr, b)...)
	images, _ := update.Find(files)
	var out []workloadContainer
	for _, img := range images {
		ref := img.Repository
		if img.Tag != "" {
			ref += ":" + img.Tag
		}
		out = append(out, workloadContainer{name: img.Container, image: ref})
	}
	return out
}

// valuesFiles reads the gitFileRef values files of a HelmRelease (data is
// it as YAML) at the revision its GitSync applied; one it cannot read is
// left out, as the HelmRelease's own status says why.
func (c *Cluster) valuesFiles(ctx context.Context, hr *helmv1.HelmRelease, data []byte) []update.File {
	if c.Git == nil {
		return nil
	}
	paths, _ := update.ValuesFiles([]update.File{{Path: "helmrelease.yaml", Data: data}})
	if len(paths) == 0 {
		return nil
	}
	ann := hr.GetAnnotations()
	ns, name, ok := strings.Cut(ann[helmfluxv1alpha1.SyncAnnotation], "/")
	rev, err := git.ParseRevision(ann[helmv1.RevisionAnnotation])
	if !ok || err != nil {
		return nil
	}
	gs := &helmfluxv1alpha1.GitSync{}
	if err := c.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, gs); err != nil {
		return nil
	}
	// The annotation may be hand-written to name another tenant's GitSync:
	// read its repository only for a HelmRelease it applied.
	id := apply.ObjectID{Group: helmv1.GroupVersion.Group, Kind: helmv1.HelmReleaseKind, Namespace: hr.Namespace, Name: hr.Name}
	if listed, err := inventory.Lists(ctx, c.Reader, gs, id); err != nil || !listed {
		return nil
	}
	var out []update.File
	for _, p := range paths {
		if b, err := c.Git.ReadFile(ctx, gs.Spec.URL, rev, p, maxValuesFile); err == nil {
			out = append(out, update.File{Path: p, Data: b})
		}
	}
	return out
}

func deploymentRollout(d *appsv1.Deployment) (string, Rollout) {
	desired := int32(1)
	if d.Spec.Replicas != nil {
		desired = *d.Spec.Replicas
	}
	r := Rollout{Desired: desired, Updated: d.Status.UpdatedReplicas, Ready: d.Status.ReadyReplicas,
		Available: d.Status.AvailableReplicas, Outdated: d.Status.Replicas - d.Status.UpdatedReplicas}
	for _, c := range d.Status.Conditions {
		if c.Type == appsv1.DeploymentProgressing && c.Status == corev1.ConditionFalse && c.Reason == "ProgressDeadlineExceeded" {
			r.Messages = append(r.Messages, c.Message)
			return StatusError, r
		}
	}
	return rolloutStatus(d.Generation, d.Status.ObservedGeneration, r), r
}

func statefulSetRollout(s *appsv1.StatefulSet) (string, Rollout) {
	desired := int32(1)
	if s.Spec.Replicas != nil {
		desired = *s.Spec.Replicas
	}
	r := Rollout{Desired: desired, Updated: s.Status.UpdatedReplicas, Ready: s.Status.ReadyReplicas,
		Available: s.Status.AvailableReplicas, Outdated: s.Status.Replicas - s.Status.UpdatedReplicas}
	return rolloutStatus(s.Generation, s.Status.ObservedGeneration, r), r
}

func daemonSetRollout(d *appsv1.DaemonSet) (string, Rollout) {
	r := Rollout{Desired: d.Status.DesiredNumberScheduled, Updated: d.Status.UpdatedNumberScheduled,
		Ready: d.Status.NumberReady, Available: d.Status.NumberAvailable,
		Outdated: d.Status.DesiredNumberScheduled - d.Status.UpdatedNumberScheduled}
	return rolloutStatus(d.Generation, d.Status.ObservedGeneration, r), r
}

// rolloutStatus is fluxd's summary: ready once the controller saw the
// current spec and every replica is updated, ready and available.
func rolloutStatus(generation, observed int64, r Rollout) string {
	if observed < generation {
		return StatusStarted
	}
	if r.Updated == r.Desired && r.Ready == r.Desired && r.Available == r.Desired && r.Outdated == 0 {
		return StatusReady
	}
	return StatusUpdating
}

// helmReleaseRollout summarises a HelmRelease from its Ready condition.
func helmReleaseRollout(hr *helmv1.HelmRelease) (string, Rollout) {
	r := Rollout{}
	c := apimeta.FindStatusCondition(hr.Status.Conditions, meta.ReadyCondition)
	switch {
	case c == nil || hr.Status.ObservedGeneration < hr.Generation:
		return StatusStarted, r
	case c.Status == metav1.ConditionTrue:
		return StatusReady, r
	case c.Status == metav1.ConditionFalse:
		r.Messages = []string{c.Message}
		return StatusError, r
	}
	return StatusUpdating, r
}
