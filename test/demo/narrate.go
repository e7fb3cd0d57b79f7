package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	helmv1 "github.com/helmflux/helmflux/api/helm/v1"
	helmfluxv1alpha1 "github.com/helmflux/helmflux/api/helmflux/v1alpha1"
	"github.com/helmflux/helmflux/internal/testenv"
)

// lockedWriter serialises writes of the narrator and of the demo's own
// output to one writer.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// narrator tells, a line each, what helmflux did in the demo: the GitSync
// applying a revision, image automation committing a tag, the HelmRelease
// installing or upgrading. It reads the objects' status, as a person with
// kubectl would, and says nothing it did not see.
type narrator struct {
	c   client.Client
	out io.Writer

	applied, pushed, release string
}

func newNarrator(kubeconfig string, out io.Writer) (*narrator, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, err
	}
	c, err := client.New(cfg, client.Options{Scheme: testenv.Scheme()})
	if err != nil {
		return nil, err
	}
	return &narrator{c: c, out: out}, nil
}

// run narrates every half second until ctx ends.
func (n *narrator) run(ctx context.Context) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		n.look(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// look prints what changed since the last look.
func (n *narrator) look(ctx context.Context) {
	gs := &helmfluxv1alpha1.GitSync{}
	if err := n.c.Get(ctx, client.ObjectKey{Namespace: "helmflux-system", Name: "demo"}, gs); err == nil {
		if rev := gs.Status.LastAppliedRevision; rev != "" && rev != n.applied {
			n.applied = rev
			n.say("synced: GitSync helmflux-system/demo applied %s", rev)
		}
		if ia := gs.Status.ImageAutomation; ia != nil && ia.LastPushedCommit != "" && ia.LastPushedCommit != n.pushed {
			n.pushed = ia.LastPushedCommit
			n.say("bumped: image automation committed %s to git", ia.LastPushedCommit)
		}
	}
	hr := &helmv1.HelmRelease{}
	if err := n.c.Get(ctx, client.ObjectKey{Namespace: "demo", Name: "podinfo"}, hr); err == nil {
		c := apimeta.FindStatusCondition(hr.Status.Conditions, meta.ReadyCondition)
		if c != nil && c.ObservedGeneration == hr.Generation && c.Message != n.release {
			n.release = c.Message
			switch c.Reason {
			case helmv1.InstallSucceededReason:
				n.say("installed: HelmRelease demo/podinfo: %s", c.Message)
			case helmv1.UpgradeSucceededReason:
				n.say("upgraded: HelmRelease demo/podinfo: %s", c.Message)
			default:
				n.say("HelmRelease demo/podinfo is Ready=%s (%s): %s", c.Status, c.Reason, c.Message)
			}
		}
	}
}

func (n *narrator) say(format string, args ...any) {
	fmt.Fprintf(n.out, "[%s] helmflux %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// pidFile is where a running demo writes its process id, for `demo stop`.
const pidFile = "demo.pid"

// stopDemo ends the demo whose state directory is stateDir, as Ctrl-C in
// its shell would, and waits until it has cleaned up.
func stopDemo(stateDir string, out io.Writer, wait time.Duration) error {
	path := stateDir + "/" + pidFile
	b, err := os.ReadFile(path) // #nosec G304 -- the demo's own state directory
	if os.IsNotExist(err) {
		fmt.Fprintf(out, "No demo is running (no %s)\n", path)
		return nil
	}
	if err != nil {
		return err
	}
	pid, err := strconv.Atoi(string(b))
	if err != nil || pid <= 0 {
		return fmt.Errorf("%s holds %q, not a process id", path, b)
	}
	if !isDemo(pid) {
		_ = os.Remove(path)
		fmt.Fprintf(out, "The demo (pid %d) was not running any more\n", pid)
		return nil
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		_ = os.Remove(path)
		fmt.Fprintf(out, "The demo (pid %d) was not running any more\n", pid)
		return nil
	}
	fmt.Fprintf(out, "Stopping the demo (pid %d)\n", pid)
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		if syscall.Kill(pid, 0) != nil || !isDemo(pid) {
			fmt.Fprintln(out, "The demo stopped")
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("the demo (pid %d) did not stop within %s", pid, wait)
}

// isDemo tells whether pid is a running demo, not a process that got the
// number of one that died without removing its pid file.
func isDemo(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline") // #nosec G304 -- a number we format
	if err != nil {
		return syscall.Kill(pid, 0) == nil // no /proc: trust the file
	}
	return strings.Contains(string(b), "demo")
}
