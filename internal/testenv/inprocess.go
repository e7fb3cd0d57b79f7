package testenv

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	helmv1 "github.com/helmflux/helmflux/api/helm/v1"
	helmfluxv1alpha1 "github.com/helmflux/helmflux/api/helmflux/v1alpha1"
	"github.com/helmflux/helmflux/operator/controllers"
)

// StartInProcess runs the operator's controllers in this process, wired as
// operator/main.go wires them, logging to logger, until ctx ends. It returns
// once the informers of what the controllers watch have synced, so a test's
// first object is seen at once and a benchmark counts none of their lists;
// done closes when the manager has stopped. Several may run in one process.
func StartInProcess(ctx context.Context, cfg *rest.Config, logger logr.Logger, opts controllers.Options) (done <-chan struct{}, err error) {
	return StartInProcessWith(ctx, cfg, logger, opts, cache.Options{})
}

// StartInProcessWith is StartInProcess with the manager's cache options, so
// that two operators in one process can split the objects between them (by
// namespace, say) the way shards would.
func StartInProcessWith(ctx context.Context, cfg *rest.Config, logger logr.Logger, opts controllers.Options, cacheOpts cache.Options) (done <-chan struct{}, err error) {
	ctrl.SetLogger(logger)
	mgr, err := ctrl.NewManager(cfg, controllers.ManagerOptions(ctrl.Options{
		Logger:     logger,
		Metrics:    metricsserver.Options{BindAddress: "0"},
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
		Cache:      cacheOpts,
	}))
	if err != nil {
		return nil, err
	}
	if err := controllers.Setup(mgr, cfg, opts); err != nil {
		return nil, err
	}
	stopped := make(chan struct{})
	running.Add(1)
	go func() {
		defer close(stopped)
		defer running.Add(-1) // before stopped closes: who saw it closed sees the count
		if err := mgr.Start(ctx); err != nil {
			logger.Error(err, "Manager stopped")
		}
	}()
	syncCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for _, obj := range []client.Object{
		&helmv1.HelmRelease{}, &helmfluxv1alpha1.GitSync{},
		&metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"}},
		&metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"}},
	} {
		informer, err := mgr.GetCache().GetInformer(syncCtx, obj)
		if err != nil {
			return stopped, fmt.Errorf("informer of %T: %w", obj, err)
		}
		for !informer.HasSynced() {
			select {
			case <-syncCtx.Done():
				return stopped, fmt.Errorf("the operator's informers did not sync: %w", syncCtx.Err())
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	return stopped, nil
}

// running counts the managers StartInProcess started whose Start has not
// returned.
var running atomic.Int64

// InProcessRunning returns how many operators StartInProcess started in
// this process are still running: a benchmark harness checks that it is 0
// between two benchmarks, so that one's reconcile loops never run while
// the next is measured.
func InProcessRunning() int { return int(running.Load()) }

// TLSTrustingClient returns an HTTP client that trusts httptest's TLS
// servers, which all share one certificate (chart repositories, values
// servers), for the operator's Options.HTTPClient.
func TLSTrustingClient() *http.Client {
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	defer srv.Close()
	tr := srv.Client().Transport.(*http.Transport).Clone()
	return &http.Client{Transport: tr, Timeout: time.Minute}
}
