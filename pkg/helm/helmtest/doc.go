// Package helmtest provides real Helm chart sources for tests: charts built
// from a few strings and packaged exactly as `helm package` does, a chart
// repository over HTTP(S) (index.yaml with digests and validators, optional
// basic auth, request counts), an OCI registry holding Helm chart artifacts
// (go-containerregistry's registry behind httptest), and hostile archives for
// the loader's defences. Everything listens on loopback and is stopped when
// the test ends.
//
// It exists so that pkg/helm, the HelmRelease controller tests and the
// end-to-end suite share one set of fixtures. Import it from tests only.
package helmtest
