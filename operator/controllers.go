package main

import (
	"fmt"
	"os"
	"path/filepath"

	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/helmflux/helmflux/operator/gitsync"
	"github.com/helmflux/helmflux/pkg/apply"
	"github.com/helmflux/helmflux/pkg/git"
)

type controllerOptions struct {
	concurrency int
	cacheDir    string
}

// setupControllers builds what the controllers share and registers them.
func setupControllers(mgr ctrl.Manager, cfg *rest.Config, opts controllerOptions) error {
	gitCache, err := git.NewCache(filepath.Join(opts.cacheDir, "git"))
	if err != nil {
		return fmt.Errorf("open the git cache: %w", err)
	}
	workDir := filepath.Join(opts.cacheDir, "work")
	if err := os.MkdirAll(workDir, 0o700); err != nil {
		return fmt.Errorf("make the work directory: %w", err)
	}
	// The applier compares with live objects, so it reads without the cache.
	direct, err := client.New(cfg, client.Options{Scheme: mgr.GetScheme(), Mapper: mgr.GetRESTMapper()})
	if err != nil {
		return fmt.Errorf("make the apply client: %w", err)
	}
	return (&gitsync.Reconciler{
		Client:      mgr.GetClient(),
		Applier:     apply.New(direct, gitsync.FieldManager),
		Git:         gitCache,
		Events:      mgr.GetEventRecorder("helmflux-gitsync"),
		WorkDir:     workDir,
		Concurrency: opts.concurrency,
	}).SetupWithManager(mgr)
}
