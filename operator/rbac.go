package main

// The operator's own permissions. Applying the manifests of a GitSync and the
// resources of a chart needs whatever those contain; the chart and config/ bind
// that separately (cluster-admin by default), so it is not listed here; Helm's
// release records (Secrets in each target namespace) are covered by it too.
// A GitSync with a service account (spec.serviceAccountName or
// --default-service-account) is applied and pruned as that account instead,
// through impersonation, which the impersonate verb allows; the get reads the
// account of a deleted GitSync.
// The CRD read tells a deleted HelmRelease from a deleted HelmRelease CRD.
//
// +kubebuilder:rbac:groups=helm.fluxcd.io,resources=helmreleases,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=helm.fluxcd.io,resources=helmreleases/status;helmreleases/finalizers,verbs=get;update;patch
// +kubebuilder:rbac:groups=helmflux.dev,resources=gitsyncs,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=helmflux.dev,resources=gitsyncs/status;gitsyncs/finalizers,verbs=get;update;patch
// +kubebuilder:rbac:groups=helmflux.dev,resources=alerts,verbs=get;list;watch
// +kubebuilder:rbac:groups=helmflux.dev,resources=alerts/status,verbs=get;update;patch
// +kubebuilder:rbac:groups="",resources=secrets;configmaps,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=serviceaccounts,verbs=get;impersonate
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=apiextensions.k8s.io,resources=customresourcedefinitions,verbs=get
// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;list;watch;create;update;patch;delete
//
// The fluxd API reads the workloads of every GitSync (and, for fluxctl save,
// the objects of their inventories: those are covered by the apply binding)
// and keeps the operator's SSH deploy key in a Secret.
//
// +kubebuilder:rbac:groups=apps,resources=deployments;statefulsets;daemonsets,verbs=get;list
// +kubebuilder:rbac:groups=batch,resources=cronjobs,verbs=get;list
//
// The deploy key's Secret lives in the operator's own namespace (the chart
// and config/ bind this Role there), so writing Secrets is no cluster-wide
// right; a --git-identity-secret in another namespace needs the same Role
// there.
//
// +kubebuilder:rbac:groups="",namespace=helmflux-system,resources=secrets,verbs=create;update
