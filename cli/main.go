// Command helmflux is the command-line tool of helmflux: a thin client of
// the operator's API (fluxd's API, which fluxctl spoke, and helmflux's
// additions under /v12). It keeps fluxctl's command names, flags and
// environment variables, so people and scripts used to fluxctl keep
// working, and adds rollback and why. It reaches the operator as fluxctl
// reached fluxd: through a port-forward to the operator's Pod, or at --url.
//
// Exit codes (docs/cli.md):
//
//	0  done
//	1  the operation failed: the operator refused it, a job failed, a
//	   workload's release failed
//	2  the command line is wrong (an unknown flag, a missing argument)
//	3  the operator could not be reached: no kubeconfig, no matching Pod,
//	   the port-forward or the connection failed, the token was refused
//	4  the wait ran out (--timeout) before the job or the sync finished
package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
)

// version is stamped at build time with -ldflags -X main.version=...
var version = "dev"

// Exit codes.
const (
	exitOK          = 0
	exitFailed      = 1
	exitUsage       = 2
	exitUnreachable = 3
	exitTimeout     = 4
)

// exitError carries an exit code with the error a user reads.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// withCode wraps err with an exit code.
func withCode(code int, err error) error {
	if err == nil {
		return nil
	}
	return &exitError{code: code, err: err}
}

// usageError is a command line that cannot run.
func usageError(format string, args ...any) error {
	return withCode(exitUsage, fmt.Errorf(format, args...))
}

// exitCode is the code err ends the process with.
func exitCode(err error) int {
	var e *exitError
	if errors.As(err, &e) {
		return e.code
	}
	if err != nil {
		return exitFailed
	}
	return exitOK
}

func newRootCmd(out io.Writer) *cobra.Command {
	return newApp(out, os.Stderr).root()
}

// root builds the command tree.
func (a *app) root() *cobra.Command {
	root := &cobra.Command{
		Use:   "helmflux",
		Short: "Drive helmflux, the GitOps operator for Helm releases, manifests and image updates",
		Long: `helmflux drives the helmflux operator from the terminal. It speaks to the
operator's API, found through a port-forward to the operator's Pod (the
kubeconfig's current context, --context, --k8s-fwd-ns, --k8s-fwd-labels)
or at --url. Every change it asks for is a commit in git.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(a.out)
	root.SetErr(a.errOut)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return withCode(exitUsage, err) })
	a.opts.addFlags(root)
	root.AddCommand(
		newVersionCmd(),
		a.listWorkloadsCmd(),
		a.listImagesCmd(),
		a.releaseCmd(),
		a.automateCmd(), a.deautomateCmd(), a.lockCmd(), a.unlockCmd(), a.policyCmd(),
		a.syncCmd(),
		a.identityCmd(),
		a.saveCmd(),
		a.rollbackCmd(),
		a.whyCmd(),
	)
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
	a := newApp(os.Stdout, os.Stderr)
	err := a.root().Execute()
	a.close()
	if err != nil {
		var e *exitError
		if !errors.As(err, &e) && isUsage(err) {
			err = withCode(exitUsage, err)
		}
		fmt.Fprintln(os.Stderr, a.style.red("Error:"), err)
	}
	os.Exit(exitCode(err))
}
