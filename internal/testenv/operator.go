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
	ready      string        // the URL that answers 200 once the operator is ready
	exact      bool          // args are all the flags; see OperatorOptions
	env        []string      // added to the test's environment
	exited     chan struct{} // closed once the current process has ended
	waitErr    error         // how it ended, set before exited closes
}

// OperatorOptions run the operator the way a manifest runs it, for
// StartOperatorWith: a test of the install must see the flags and the
// environment the install gives, not StartOperator's convenient defaults.
type OperatorOptions struct {
	// Args are the operator's flags, all of them: StartOperator's own (cache
	// directory, no HTTP API, no metrics, a free probe address) are not
	// added, and the kubeconfig comes in $KUBECONFIG instead of a flag.
	Args []string
	// Env is added to the test's environment; a later entry wins.
	Env []string
	// ReadyURL answers 200 once the operator is ready: the readiness probe
	// of the manifest, at the address Args bind it to.
	ReadyURL string
}

// StartOperator builds and starts the operator against env as an admin user,
// with extra flags, and waits until it is ready. It allows local URLs
// (--allow-local-urls), as tests serve their repositories over file:// and
// 127.0.0.1; pass --allow-local-urls=false to see them refused. Its cache directory
// survives restarts; it is stopped (SIGTERM) when the test ends, and killed
// with the test process if that dies first (on Linux, see startChild).
func StartOperator(t testing.TB, env *envtest.Environment, args ...string) *Operator {
	t.Helper()
	o := newOperator(t, env)
	o.args = args
	o.Start()
	return o
}

// StartOperatorWith is StartOperator with exactly the flags and extra
// environment of opts, and readiness polled at opts.ReadyURL.
func StartOperatorWith(t testing.TB, env *envtest.Environment, opts OperatorOptions) *Operator {
	t.Helper()
	o := newOperator(t, env)
	o.args, o.exact, o.ready = opts.Args, true, opts.ReadyURL
	o.env = append([]string{"KUBECONFIG=" + o.kubeconfig}, opts.Env...)
	o.Start()
	return o
}

// newOperator builds the binary and makes the admin kubeconfig of an
// operator that is stopped when the test ends.
func newOperator(t testing.TB, env *envtest.Environment) *Operator {
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
	o := &Operator{t: t, bin: bin, dir: dir, kubeconfig: kubeconfig}
	t.Cleanup(func() {
		o.Stop()
		if t.Failed() {
			t.Logf("operator log (last lines):\n%s", o.LogTail(40))
		}
	})
	return o
}

// Start starts the process again after Kill or Stop, with the same flags and cache.
func (o *Operator) Start() {
	o.t.Helper()
	args := o.args
	if !o.exact {
		probe, err := FreeAddr()
		if err != nil {
			o.t.Fatal(err)
		}
		o.ready = "http://" + probe + "/readyz"
		args = append([]string{"--kubeconfig", o.kubeconfig, "--cache-dir", filepath.Join(o.dir, "cache"),
			"--listen=", "--metrics-bind-address=0", "--health-probe-bind-address=" + probe,
			"--allow-local-urls"}, o.args...)
	}
	o.cmd = exec.Command(o.bin, args...) // #nosec G204 -- the operator built for this test
	if len(o.env) > 0 {
		o.cmd.Env = append(os.Environ(), o.env...)
	}
	var err error
	if o.log, err = os.OpenFile(filepath.Join(o.dir, "operator.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600); err != nil {
		o.t.Fatal(err)
	}
	o.cmd.Stdout, o.cmd.Stderr = o.log, o.log
	if err := startChild(o.cmd); err != nil {
		o.t.Fatal(err)
	}
	exited := make(chan struct{})
	o.exited = exited
	go func() { o.waitErr = o.cmd.Wait(); close(exited) }()
	// The test's cleanup prints the log's tail when the test fails.
	Eventually(o.t, time.Minute, "the operator to answer "+o.ready, func() (bool, string) {
		select {
		case <-exited:
			o.t.Fatalf("the operator exited before it was ready: %v", o.waitErr)
		default:
		}
		resp, err := http.Get(o.ready) // #nosec G107 -- loopback probe
		if err != nil {
			return false, err.Error()
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK, resp.Status
	})
}

// Pid returns the process id.
func (o *Operator) Pid() int { return o.cmd.Process.Pid }

// Kill ends the process with SIGKILL: no cleanup, as when a node dies.
func (o *Operator) Kill() { o.signal(syscall.SIGKILL) }

// Stop ends the process with SIGTERM and waits, as on a rolling update.
func (o *Operator) Stop() { o.signal(syscall.SIGTERM) }

func (o *Operator) signal(sig syscall.Signal) {
	if o.exited == nil {
		return
	}
	select {
	case <-o.exited:
	default:
		_ = o.cmd.Process.Signal(sig)
		<-o.exited
	}
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
