package testenv

import (
	"context"
	"fmt"
	"os"
	"testing"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// Main is the body of an end-to-end suite's TestMain: it starts a control
// plane, hands it and an admin client to setup (which keeps them, and
// may start more, returning how to stop that), runs the tests and stops
// everything again. It returns the exit code for os.Exit.
func Main(m *testing.M, setup func(env *envtest.Environment, cfg *rest.Config, c client.Client) (stop func() error, err error)) int {
	env, err := New()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	cfg, err := env.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "start the control plane:", err)
		return 1
	}
	defer func() { _ = env.Stop() }()
	c, err := client.New(cfg, client.Options{Scheme: Scheme()})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	stop, err := setup(env, cfg, c)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if stop != nil {
		defer func() { _ = stop() }()
	}
	return m.Run()
}

// MainWithWorkloads is Main for a suite whose in-process operator works
// beside kube-controller-manager's workload controllers (StartWorkloads):
// it keeps the admin client in *k8s, starts the workload controllers and
// then the operator with start, and stops both when the tests end.
func MainWithWorkloads(m *testing.M, k8s *client.Client, start func(ctx context.Context, cfg *rest.Config) error) int {
	return Main(m, func(env *envtest.Environment, cfg *rest.Config, c client.Client) (func() error, error) {
		*k8s = c
		ctx, cancel := context.WithCancel(context.Background())
		stop, err := StartWorkloads(ctx, env, WorkloadOptions{})
		if err != nil {
			cancel()
			return nil, err
		}
		if err := start(ctx, cfg); err != nil {
			cancel()
			_ = stop()
			return nil, err
		}
		return func() error { cancel(); return stop() }, nil
	})
}
