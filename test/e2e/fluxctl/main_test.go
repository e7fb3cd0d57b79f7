// Package fluxctl tells the seed's story with both clients of the
// operator's API, each against the operator running as its own process on
// the local control plane: the real, unmodified fluxctl v1.25.4 (built into
// ./bin by `make fluxctl`), and helmflux's own CLI (./cli, built once by
// TestMain; its tests are named TestHelmflux...). List the workloads and
// their images, release, change policies, sync, show the deploy key, save;
// for helmflux also why, version, completion, its exit codes and its
// port-forward. Each command is asserted twice: what a user sees (the
// table, the job's output, the JSON, the exit status) and its effect (one
// commit on the remote with the expected diff, the cluster following it).
//
// Each test has its own operator process, namespace, git repository (served
// by `git http-backend`) and registry. Tests run one after the other: the
// fluxd routes that speak for one repository (sync, identity) answer for
// the first GitSync, so each test removes its GitSync before it ends.
package fluxctl

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	helmfluxv1alpha1 "github.com/helmflux/helmflux/api/helmflux/v1alpha1"
	"github.com/helmflux/helmflux/internal/testenv"
	"github.com/helmflux/helmflux/operator/fluxapi"
	"github.com/helmflux/helmflux/pkg/git/gittest"
	"github.com/helmflux/helmflux/pkg/registry/registrytest"
)

var (
	env *envtest.Environment
	k8s client.Client
	// skip says why the tests that need the control plane skip when it is
	// missing.
	skip string
	// The two clients: fluxctl is ./bin/fluxctl, helmflux the CLI built
	// from ./cli.
	fluxctlTool, helmfluxTool tool
)

// tool is a command-line client of the operator's API that a story runs.
type tool struct {
	bin string
	// missing, when set, says why the runs of this tool skip.
	missing string
}

// helmfluxVersion is stamped into the helmflux built for the tests.
const helmfluxVersion = "v0.0.0-e2e"

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	root, err := testenv.RepoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	bin, err := os.MkdirTemp("", "helmflux-cli-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = os.RemoveAll(bin) }()
	helmfluxTool = tool{bin: filepath.Join(bin, "helmflux")}
	build := exec.Command("go", "build", "-ldflags", "-X main.version="+helmfluxVersion, "-o", helmfluxTool.bin, "./cli") // #nosec G204 -- a temp path of our own
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build the helmflux CLI (go build ./cli in %s): %v\n%s", root, err, out)
		return 1
	}
	fluxctlTool = tool{bin: filepath.Join(root, "bin", "fluxctl")}
	if _, err := os.Stat(fluxctlTool.bin); err != nil {
		// The fluxctl runs skip with this message; helmflux's do not.
		fluxctlTool.missing = fmt.Sprintf("%s is missing: run `make fluxctl` (or `make test`) to build fluxctl v1.25.4", fluxctlTool.bin)
	}
	if env, err = testenv.New(); err != nil {
		if errors.Is(err, testenv.ErrMissingBinary) {
			skip = err.Error()
			return m.Run()
		}
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	cfg, err := env.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "start the control plane:", err)
		return 1
	}
	defer func() { _ = env.Stop() }()
	stop, err := testenv.StartWorkloads(context.Background(), env, testenv.WorkloadOptions{
		// fluxctl without --url port-forwards to the operator's "Pod".
		PortForward: true,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = stop() }()
	if k8s, err = client.New(cfg, client.Options{Scheme: testenv.Scheme()}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// story is one test's world: its namespace, repository, registry and
// operator, and the clients (fluxctl, helmflux) that talk to it.
type story struct {
	t    *testing.T
	ns   string
	repo *gittest.Repo
	// gitURL is the repository over smart HTTP, as the GitSync reads it.
	gitURL string
	reg    *registrytest.Server
	// image is the registry's team/app repository.
	image string
	op    *testenv.Operator
	// addr is the operator's --listen address; url the API there as
	// the clients' --url takes it.
	addr, url string
	// token is passed as --token when set.
	token string
	// home is the clients' $HOME: no git or kube config of the developer's.
	home string
}

// storyOptions change how a story starts.
type storyOptions struct {
	// token runs the operator with --api-token-file holding it.
	token string
	// files are the repository's files; NS, IMAGE and CANARY are replaced.
	files map[string]string
	// tags are pushed to team/app before the operator starts, oldest first,
	// an hour apart.
	tags []string
	// automationInterval is the operator's --automation-interval; 0 means
	// an hour, so that no automation pass runs in a test and only the
	// client writes to git.
	automationInterval time.Duration
}

// t0 is when the first of storyOptions.tags was built.
var t0 = time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)

// newStory starts the registry, the repository and its HTTP server, the
// operator with the API on a free port, and a GitSync of the repository's
// apps directory, and waits until the GitSync applied the head.
func newStory(t *testing.T, opts storyOptions) *story {
	t.Helper()
	if skip != "" {
		t.Skip(skip)
	}
	s := &story{t: t, home: t.TempDir()}
	s.ns = testenv.NewNamespace(t, k8s, "fluxctl-")
	s.reg = registrytest.NewServer(t, registrytest.WithPlainHTTP())
	s.image = s.reg.Host() + "/team/app"
	for i, tag := range opts.tags {
		s.reg.Push(t, "team/app", tag, t0.Add(time.Duration(i)*time.Hour))
	}
	files := map[string]string{}
	for name, content := range opts.files {
		files[name] = s.expand(content)
	}
	s.repo = gittest.NewRepo(t, files)
	s.gitURL = gittest.NewHTTPServer(t, s.repo.Root()).URL(gittest.RepoName)

	addr, err := testenv.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	s.addr, s.url = addr, "http://"+addr+fluxapi.Prefix
	interval := opts.automationInterval
	if interval == 0 {
		interval = time.Hour
	}
	args := []string{"--listen=" + addr, "--registry-insecure-host=" + s.reg.Host(),
		"--git-identity-secret=" + s.ns + "/flux-identity",
		"--automation-interval=" + interval.String()}
	if opts.token != "" {
		s.token = opts.token
		file := filepath.Join(t.TempDir(), "token")
		if err := os.WriteFile(file, []byte(opts.token+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--api-token-file="+file)
	}
	s.op = testenv.StartOperator(t, env, args...)
	// Registered after the operator, so it runs before the operator stops:
	// the GitSync's finalizer needs the operator to go.
	s.createGitSync()
	return s
}

// bareStory is a story with no control plane, operator or repository:
// for the client commands that never reach an operator.
func bareStory(t *testing.T) *story {
	return &story{t: t, home: t.TempDir()}
}

// expand fills in a manifest template.
func (s *story) expand(tmpl string) string {
	return strings.NewReplacer("NS", s.ns, "IMAGE", s.image, "CANARY", canary).Replace(tmpl)
}

// createGitSync makes the GitSync "apps" of the repository's apps
// directory, waits until it applied the head, and removes it (waiting until
// it is gone) when the test ends.
func (s *story) createGitSync() {
	t := s.t
	t.Helper()
	gs := &helmfluxv1alpha1.GitSync{
		ObjectMeta: metav1.ObjectMeta{Namespace: s.ns, Name: "apps"},
		Spec: helmfluxv1alpha1.GitSyncSpec{URL: s.gitURL, Paths: []string{"apps"},
			Interval: metav1.Duration{Duration: time.Minute}, Ref: &helmfluxv1alpha1.GitRef{Branch: "main"}},
	}
	if err := k8s.Create(context.Background(), gs); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		if err := k8s.Delete(ctx, gs); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("delete the GitSync: %v", err)
			return
		}
		testenv.Eventually(t, time.Minute, "the GitSync to be gone", func() (bool, string) {
			err := k8s.Get(ctx, client.ObjectKeyFromObject(gs), &helmfluxv1alpha1.GitSync{})
			return apierrors.IsNotFound(err), fmt.Sprint(err)
		})
	})
	s.waitApplied(s.repo.Head())
}

// waitApplied waits until the GitSync applied the commit head, or a commit
// after it (automation may push on top before a poll sees head applied),
// and is Ready.
func (s *story) waitApplied(head string) {
	s.t.Helper()
	testenv.Eventually(s.t, time.Minute, "the GitSync to apply "+head, func() (bool, string) {
		got := &helmfluxv1alpha1.GitSync{}
		if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: s.ns, Name: "apps"}, got); err != nil {
			return false, err.Error()
		}
		ready := apimeta.FindStatusCondition(got.Status.Conditions, meta.ReadyCondition)
		applied := got.Status.LastAppliedRevision
		atOrAfter := strings.HasSuffix(applied, head) || descends(s.repo.BareDir(), head, applied[strings.LastIndex(applied, ":")+1:])
		return applied != "" && atOrAfter && ready != nil && ready.Status == metav1.ConditionTrue,
			fmt.Sprintf("%s %+v", got.Status.LastAppliedRevision, ready)
	})
}

// lastApplied returns the hash the GitSync last applied.
func (s *story) lastApplied() string {
	s.t.Helper()
	got := &helmfluxv1alpha1.GitSync{}
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: s.ns, Name: "apps"}, got); err != nil {
		s.t.Fatal(err)
	}
	_, hash, _ := strings.Cut(got.Status.LastAppliedRevision, "sha1:")
	return hash
}

// result is one run of a client.
type result struct {
	// tool is the client's name: fluxctl or helmflux.
	tool           string
	args           []string
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("%s %s: exit status %d\n--- stdout:\n%s--- stderr:\n%s", r.tool, strings.Join(r.args, " "), r.code, r.stdout, r.stderr)
}

// fluxctlTimeout bounds a client's run; the client's own --timeout (job
// and sync polling) is set a little shorter, so it reports its own
// timeout.
const (
	fluxctlTimeout = 3 * time.Minute
	pollTimeout    = "2m"
)

// cmd makes a command of the client tl with the story's URL (and token),
// its own $HOME, and no FLUX_* or KUBECONFIG of the developer's. Both
// clients take --url, --token and --timeout.
func (s *story) cmd(ctx context.Context, tl tool, args ...string) *exec.Cmd {
	full := append([]string{"--url", s.url, "--timeout", pollTimeout}, args...)
	if s.token != "" {
		full = append([]string{"--token", s.token}, full...)
	}
	return s.rawCmd(ctx, tl, full...)
}

// rawCmd is cmd without --url, --token and --timeout.
func (s *story) rawCmd(ctx context.Context, tl tool, args ...string) *exec.Cmd {
	s.t.Helper()
	if tl.missing != "" {
		s.t.Skip(tl.missing)
	}
	cmd := exec.CommandContext(ctx, tl.bin, args...) // #nosec G204 -- a client built for the tests
	var environ []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "FLUX_") && !strings.HasPrefix(e, "WEAVE_") && !strings.HasPrefix(e, "KUBECONFIG=") &&
			!strings.HasPrefix(e, "HOME=") && !strings.HasPrefix(e, "GIT_") && !strings.HasPrefix(e, "XDG_CONFIG_HOME=") {
			environ = append(environ, e)
		}
	}
	cmd.Env = append(environ, "HOME="+s.home, "KUBECONFIG="+s.kubeconfig(), "GIT_CONFIG_NOSYSTEM=1")
	return cmd
}

// kubeconfig returns $KUBECONFIG for the clients: one with no context unless a
// test wrote another, so unqualified workload names are in "default" and
// the client's loader has nothing to warn about.
func (s *story) kubeconfig() string {
	path := filepath.Join(s.home, "kubeconfig")
	if _, err := os.Stat(path); err != nil {
		_ = os.WriteFile(path, []byte("apiVersion: v1\nkind: Config\n"), 0o600)
	}
	return path
}

// fluxctl runs fluxctl and returns what it printed and how it ended.
func (s *story) fluxctl(args ...string) result {
	s.t.Helper()
	return s.run(fluxctlTool, "", args...)
}

// helmflux runs helmflux and returns what it printed and how it ended.
func (s *story) helmflux(args ...string) result {
	s.t.Helper()
	return s.run(helmfluxTool, "", args...)
}

// run runs the client tl with stdin as its standard input.
func (s *story) run(tl tool, stdin string, args ...string) result {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), fluxctlTimeout)
	defer cancel()
	cmd := s.cmd(ctx, tl, args...)
	cmd.Stdin = strings.NewReader(stdin)
	return s.runCmd(cmd, args)
}

// runCmd runs a command rawCmd or cmd made and returns what it printed and
// how it ended.
func (s *story) runCmd(cmd *exec.Cmd, args []string) result {
	s.t.Helper()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{tool: filepath.Base(cmd.Path), args: args, stdout: stdout.String(), stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		r.code = exit.ExitCode()
	case err != nil:
		s.t.Fatalf("run %s %s: %v", r.tool, strings.Join(args, " "), err)
	}
	logRun(s.t, r)
	return r
}

// ok runs fluxctl and fails the test unless it exits 0.
func (s *story) ok(args ...string) result {
	s.t.Helper()
	return s.okWith(fluxctlTool, args...)
}

// helmfluxOK runs helmflux and fails the test unless it exits 0.
func (s *story) helmfluxOK(args ...string) result {
	s.t.Helper()
	return s.okWith(helmfluxTool, args...)
}

func (s *story) okWith(tl tool, args ...string) result {
	s.t.Helper()
	r := s.run(tl, "", args...)
	if r.code != 0 {
		s.fatalf("%s", r)
	}
	return r
}

// fatalf fails the test with the operator's log tail.
func (s *story) fatalf(format string, args ...any) {
	s.t.Helper()
	s.t.Fatalf(format+"%s", append(args, s.opLog())...)
}

// errorf reports a failure with the operator's log tail.
func (s *story) errorf(format string, args ...any) {
	s.t.Helper()
	s.t.Errorf(format+"%s", append(args, s.opLog())...)
}

// opLog is the operator's log tail for a failure, "" when the story runs
// no operator.
func (s *story) opLog() string {
	if s.op == nil {
		return ""
	}
	return "\n--- operator log (last lines):\n" + s.op.LogTail(30)
}

// eventuallyOK runs fluxctl until it exits 0 and cond holds on its output.
func (s *story) eventuallyOK(what string, cond func(result) bool, args ...string) result {
	s.t.Helper()
	return s.eventuallyWith(fluxctlTool, what, cond, args...)
}

// eventuallyHelmflux is eventuallyOK with helmflux.
func (s *story) eventuallyHelmflux(what string, cond func(result) bool, args ...string) result {
	s.t.Helper()
	return s.eventuallyWith(helmfluxTool, what, cond, args...)
}

func (s *story) eventuallyWith(tl tool, what string, cond func(result) bool, args ...string) result {
	s.t.Helper()
	var last result
	testenv.Eventually(s.t, time.Minute, what, func() (bool, string) {
		last = s.run(tl, "", args...)
		return last.code == 0 && cond(last), last.String()
	})
	return last
}

// logRun shows with -v what a user saw, the first lines of each stream.
func logRun(t *testing.T, r result) {
	t.Helper()
	short := func(out string) string {
		ls := strings.SplitAfter(out, "\n")
		if len(ls) > 12 {
			ls = append(ls[:12], fmt.Sprintf("... (%d more lines)\n", len(ls)-12))
		}
		return strings.Join(ls, "")
	}
	t.Logf("$ %s %s (exit status %d)\n%s%s", r.tool, strings.Join(r.args, " "), r.code, short(r.stdout), short(r.stderr))
}

// syncBuffer is a bytes.Buffer safe to write from a process's pipe while a
// test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// descends tells whether commit is a descendant of ancestor in the bare
// repository at dir.
func descends(dir, ancestor, commit string) bool {
	if commit == "" {
		return false
	}
	return exec.Command("git", "-C", dir, "merge-base", "--is-ancestor", ancestor, commit).Run() == nil // #nosec G204 -- the test's own repository and hashes
}
