// Command helmflux is the command-line tool of helmflux. It keeps fluxctl's
// command names and flags, so scripts written for fluxctl keep working.
package main

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
)

// version is stamped at build time with -ldflags -X main.version=...
var version = "dev"

func newRootCmd(out io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "helmflux",
		Short:         "Drive helmflux, the GitOps operator for Helm releases, manifests and image updates",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(out)
	root.AddCommand(newVersionCmd())
	return root
}

// newVersionCmd prints the CLI's own version; like fluxctl's, it never touches
// the network.
func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of the helmflux CLI",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintln(cmd.OutOrStdout(), version)
			return err
		},
	}
}

func main() {
	if err := newRootCmd(os.Stdout).Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		os.Exit(1)
	}
}
