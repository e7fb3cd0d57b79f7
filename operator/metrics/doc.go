// Package metrics is helmflux's Prometheus instrumentation: one Recorder
// holds every collector the operator adds to controller-runtime's registry
// (served on --metrics-bind-address beside controller-runtime's own
// controller and workqueue metrics), with Flux's names where a Flux
// dashboard expects one (gotk_reconcile_*) and helmflux_* otherwise.
//
// pkg/ stays free of it: pkg/git, pkg/helm and pkg/registry take small
// observer hooks, which the Recorder implements, and the controllers call
// the Recorder at the end of each pass. A nil *Recorder records nothing,
// so a controller built without one (a unit test) works unchanged.
//
// No label carries a secret or an unbounded value: objects by namespace
// and name, hosts without paths or users, fixed sets of results and
// actions; never a tag, a commit or a URL. docs/metrics.md lists them all.
package metrics
