package testenv

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

var (
	buildOnce sync.Once
	built     string
	buildErr  error
)

// OperatorBinary builds ./operator once per test binary and returns its path.
func OperatorBinary() (string, error) {
	buildOnce.Do(func() {
		root, err := RepoRoot()
		if err != nil {
			buildErr = err
			return
		}
		dir, err := os.MkdirTemp("", "helmflux-operator-")
		if err != nil {
			buildErr = err
			return
		}
		built = filepath.Join(dir, "helmflux-operator")
		cmd := exec.Command("go", "build", "-o", built, "./operator") // #nosec G204 -- a temp path of our own
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("build the operator: %w\n%s", err, out)
		}
	})
	return built, buildErr
}

// Operator is helmflux-operator running as its own process against a test
// control plane, so tests can kill and restart it as a node failure would.
type Operator struct {
	t          testing.TB
	bin        string
	args       []string
	dir        string
	kubeconfig string
	cmd        *exec.Cmd
	log        *os.File
	probe      string
}

// StartOperator builds and starts the operator against env as an admin user,
// with extra flags, and waits until it is ready. Its cache directory
// survives restarts; it is stopped (SIGTERM) when the test ends, and killed
// with the test process if that dies first (on Linux, see startChild).
func StartOperator(t testing.TB, env *envtest.Environment, args ...string) *Operator {
	t.Helper()
	bin, err := OperatorBinary()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	kubeconfig, err := AdminKubeconfig(env, dir, "helmflux-operator")
	if err != nil {
		t.Fatal(err)
	}
	o := &Operator{t: t, bin: bin, args: args, dir: dir, kubeconfig: kubeconfig}
	t.Cleanup(func() {
		o.Stop()
		if t.Failed() {
			t.Logf("operator log (last lines):\n%s", o.LogTail(40))
		}
	})
	o.Start()
	return o
}

// Start starts the process again after Kill or Stop, with the same flags and cache.
func (o *Operator) Start() {
	o.t.Helper()
	probe, err := FreeAddr()
	if err != nil {
		o.t.Fatal(err)
	}
	o.probe = probe
	args := append([]string{"--kubeconfig", o.kubeconfig, "--cache-dir", filepath.Join(o.dir, "cache"),
		"--listen=", "--metrics-bind-address=0", "--health-probe-bind-address=" + probe}, o.args...)
	o.cmd = exec.Command(o.bin, args...) // #nosec G204 -- the operator built for this test
	if o.log, err = os.OpenFile(filepath.Join(o.dir, "operator.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600); err != nil {
		o.t.Fatal(err)
	}
	o.cmd.Stdout, o.cmd.Stderr = o.log, o.log
	if err := startChild(o.cmd); err != nil {
		o.t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if resp, err := http.Get("http://" + probe + "/readyz"); err == nil { // #nosec G107 -- loopback probe
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	o.t.Fatalf("the operator did not become ready:\n%s", o.LogTail(30))
}

// Pid returns the process id.
func (o *Operator) Pid() int { return o.cmd.Process.Pid }

// Kill ends the process with SIGKILL: no cleanup, as when a node dies.
func (o *Operator) Kill() { o.signal(syscall.SIGKILL) }

// Stop ends the process with SIGTERM and waits, as on a rolling update.
func (o *Operator) Stop() { o.signal(syscall.SIGTERM) }

func (o *Operator) signal(sig syscall.Signal) {
	if o.cmd == nil || o.cmd.Process == nil || o.cmd.ProcessState != nil {
		return
	}
	_ = o.cmd.Process.Signal(sig)
	_ = o.cmd.Wait()
	_ = o.log.Close()
}

// Log returns everything the operator logged, over all its runs.
func (o *Operator) Log() string {
	b, _ := os.ReadFile(filepath.Join(o.dir, "operator.log"))
	return string(b)
}

// LogTail returns the last n lines of the log.
func (o *Operator) LogTail(n int) string {
	lines := strings.Split(o.Log(), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
