package main

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/helmflux/helmflux/internal/testenv"
)

// controlPlaneStart measures how long the local control plane (etcd and
// kube-apiserver with helmflux's CRDs established) takes to start: the fixed
// cost of every integration test binary and of the demo. Median of 3 starts.
var controlPlaneStart = benchmark{
	names: []string{"controlplane_start_ms"},
	run: func(ctx context.Context, env environment, report func(string, float64)) error {
		var samples []time.Duration
		for range 3 {
			if err := ctx.Err(); err != nil {
				return err
			}
			te, err := testenv.New()
			if err != nil {
				return err
			}
			start := time.Now()
			if _, err := te.Start(); err != nil {
				return fmt.Errorf("start the control plane: %w", err)
			}
			samples = append(samples, time.Since(start))
			if err := te.Stop(); err != nil {
				return fmt.Errorf("stop the control plane: %w", err)
			}
		}
		sort.Slice(samples, func(i, j int) bool { return samples[i] < samples[j] })
		report("controlplane_start_ms", float64(samples[len(samples)/2].Milliseconds()))
		return nil
	},
}
