package helmtest

import (
	"context"
	"fmt"
	"sync"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// SDK runs plain Helm SDK actions with none of helmflux's code in between:
// action.Install and action.Upgrade with Helm's defaults, its own kube client
// and its default storage (Secrets). It is the floor the benchmarks measure
// the operator's API requests against: what a long-running program using
// the SDK at its tightest spends per release. One action.Configuration per
// namespace is made on first use and kept, so discovery and capabilities
// are read once, not per action (a `helm install` process reads them every
// time); what Helm still does per action (its reachability probe, a GET
// /version) is counted.
type SDK struct {
	getter *sdkGetter

	mu      sync.Mutex
	configs map[string]*action.Configuration
}

// NewSDK returns an SDK for the cluster of cfg.
func NewSDK(cfg *rest.Config) (*SDK, error) {
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("make discovery client: %w", err)
	}
	cached := memory.NewMemCacheClient(dc)
	return &SDK{
		getter:  &sdkGetter{cfg: rest.CopyConfig(cfg), discovery: cached, mapper: restmapper.NewDeferredDiscoveryRESTMapper(cached)},
		configs: map[string]*action.Configuration{},
	}, nil
}

func (s *SDK) configuration(namespace string) (*action.Configuration, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.configs[namespace]; ok {
		return c, nil
	}
	g := *s.getter
	g.namespace = namespace
	c := &action.Configuration{}
	if err := c.Init(&g, namespace, "secret", func(string, ...any) {}); err != nil {
		return nil, fmt.Errorf("init the Helm configuration: %w", err)
	}
	s.configs[namespace] = c
	return c, nil
}

// Install installs ch as release name in namespace: action.Install with
// its defaults (no wait). Helm mutates a chart it installs: pass a fresh one
// each time.
func (s *SDK) Install(ctx context.Context, namespace, name string, ch *chart.Chart, values map[string]any) error {
	cfg, err := s.configuration(namespace)
	if err != nil {
		return err
	}
	in := action.NewInstall(cfg)
	in.ReleaseName = name
	in.Namespace = namespace
	in.Timeout = 5 * time.Minute
	if _, err := in.RunWithContext(ctx, ch, values); err != nil {
		return fmt.Errorf("install %s/%s: %w", namespace, name, err)
	}
	return nil
}

// Upgrade upgrades release name in namespace to ch and values:
// action.Upgrade with its defaults (no wait, no history limit).
func (s *SDK) Upgrade(ctx context.Context, namespace, name string, ch *chart.Chart, values map[string]any) error {
	cfg, err := s.configuration(namespace)
	if err != nil {
		return err
	}
	up := action.NewUpgrade(cfg)
	up.Namespace = namespace
	up.Timeout = 5 * time.Minute
	if _, err := up.RunWithContext(ctx, name, ch, values); err != nil {
		return fmt.Errorf("upgrade %s/%s: %w", namespace, name, err)
	}
	return nil
}

// sdkGetter hands Helm one rest config, discovery cache and REST mapper.
type sdkGetter struct {
	cfg       *rest.Config
	discovery discovery.CachedDiscoveryInterface
	mapper    meta.RESTMapper
	namespace string
}

func (g *sdkGetter) ToRESTConfig() (*rest.Config, error) { return rest.CopyConfig(g.cfg), nil }

func (g *sdkGetter) ToDiscoveryClient() (discovery.CachedDiscoveryInterface, error) {
	return g.discovery, nil
}

func (g *sdkGetter) ToRESTMapper() (meta.RESTMapper, error) { return g.mapper, nil }

func (g *sdkGetter) ToRawKubeConfigLoader() clientcmd.ClientConfig {
	return clientcmd.NewDefaultClientConfig(*clientcmdapi.NewConfig(),
		&clientcmd.ConfigOverrides{Context: clientcmdapi.Context{Namespace: g.namespace}})
}
