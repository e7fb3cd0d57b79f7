// Command chartlint lints a Helm chart with the Helm SDK's linter, the same checks
// as `helm lint`, so that `make chart-lint` needs no helm binary.
package main

import (
	"fmt"
	"os"

	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: chartlint CHART_DIR...")
		os.Exit(2)
	}
	failed := false
	for _, dir := range os.Args[1:] {
		res := lint.AllWithKubeVersion(dir, map[string]any{}, "helmflux-system", nil)
		for _, m := range res.Messages {
			fmt.Printf("%s: %s\n", dir, m)
			if m.Severity >= support.WarningSev {
				failed = true
			}
		}
		fmt.Printf("%s: linted, %d message(s)\n", dir, len(res.Messages))
	}
	if failed {
		os.Exit(1)
	}
}
