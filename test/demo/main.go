// Command demo runs helmflux's demo: a local control plane (kube-apiserver,
// etcd and fake nodes from ./bin) with the CRDs installed, a git server, a
// Helm chart repository and an image registry, and the operator keeping the
// cluster in step with the git repository (plain manifests and a HelmRelease)
// and the repository in step with the registry (image automation). It prints
// how to reach the cluster and runs until interrupted (or for -for).
//
// `demo push-tag <tag>...` pushes new tags of the demo image to the running
// demo's registry and notifies the operator, as a CI pipeline and a
// registry's webhook would.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/helmflux/helmflux/internal/testenv"
)

// defaultHookAddr is where the operator's receivers listen unless -hook-addr
// says otherwise.
const defaultHookAddr = "127.0.0.1:3030"

type options struct {
	root         string        // repository root
	stateDir     string        // where the kubeconfig and logs go
	runFor       time.Duration // 0: until interrupted
	operator     string        // the operator binary to start
	gitAddr      string        // where the demo git server listens
	chartAddr    string        // where the demo chart repository listens
	registryAddr string        // where the demo image registry listens
	hookAddr     string        // where the operator's git push and registry receivers listen
	onReady      func(kubeconfig string)
}

func main() {
	root, _ := os.Getwd()
	opts := options{root: root, operator: filepath.Join(root, "bin", "helmflux-operator")}
	flag.StringVar(&opts.stateDir, "state-dir", filepath.Join(root, ".demo"), "Directory for the kubeconfig and logs.")
	flag.DurationVar(&opts.runFor, "for", 0, "Stop after this long; 0 runs until interrupted.")
	flag.StringVar(&opts.operator, "operator", opts.operator, "The operator binary to start against the control plane.")
	flag.StringVar(&opts.gitAddr, "git-addr", "127.0.0.1:3031", "Address of the demo git server (smart HTTP).")
	flag.StringVar(&opts.chartAddr, "chart-addr", "127.0.0.1:3032", "Address of the demo Helm chart repository.")
	flag.StringVar(&opts.registryAddr, "registry-addr", defaultRegistryAddr, "Address of the demo image registry (plain HTTP).")
	flag.StringVar(&opts.hookAddr, "hook-addr", defaultHookAddr, "Address of the operator's receivers of git push and registry notifications.")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), `Usage:
  go run ./test/demo [flags]                    start the demo
  go run ./test/demo [flags] push-tag <tag>...  push tags of the demo image to the running demo's registry
  go run ./test/demo [flags] stop               stop the demo running in another shell (make demo-stop)

Flags:
`)
		flag.PrintDefaults()
	}
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch flag.Arg(0) {
	case "":
		err = run(ctx, opts, os.Stdout)
	case "push-tag":
		err = pushTags(ctx, opts, os.Stdout, flag.Args()[1:])
	case "stop":
		err = stopDemo(opts.stateDir, os.Stdout, 90*time.Second)
	default:
		flag.Usage()
		err = fmt.Errorf("unknown command %q", flag.Arg(0))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, opts options, w io.Writer) (err error) {
	out := &lockedWriter{w: w}
	bin := filepath.Join(opts.root, "bin")
	if err := os.MkdirAll(opts.stateDir, 0o750); err != nil {
		return err
	}
	pidPath := filepath.Join(opts.stateDir, pidFile)
	if err := os.WriteFile(pidPath, []byte(strconv.Itoa(os.Getpid())), 0o600); err != nil {
		return err
	}
	defer func() { _ = os.Remove(pidPath) }()
	env, err := testenv.New()
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "Starting the local control plane (kube-apiserver, etcd, kube-controller-manager, kube-scheduler and kwok fake nodes from ./bin)")
	if _, err := env.Start(); err != nil {
		return fmt.Errorf("start the control plane (run `make controlplane` first): %w", err)
	}
	defer func() { err = errors.Join(err, env.Stop()) }()
	workloads := filepath.Join(opts.stateDir, "workloads")
	if err := os.MkdirAll(workloads, 0o750); err != nil {
		return err
	}
	stopWorkloads, err := testenv.StartWorkloads(ctx, env, testenv.WorkloadOptions{Dir: workloads})
	if err != nil {
		return fmt.Errorf("start the fake nodes: %w", err)
	}
	defer func() { err = errors.Join(err, stopWorkloads()) }()
	chartRepo, stopCharts, err := startChartRepo(filepath.Join(opts.stateDir, "charts"), opts.chartAddr)
	if err != nil {
		return err
	}
	defer stopCharts()
	registryHost, stopRegistry, err := startRegistry(ctx, opts.registryAddr, filepath.Join(opts.stateDir, "registry.log"))
	if err != nil {
		return err
	}
	defer stopRegistry()

	user, err := env.AddUser(envtest.User{Name: "demo-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return fmt.Errorf("add the demo user: %w", err)
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		return fmt.Errorf("make the kubeconfig: %w", err)
	}
	kcPath := filepath.Join(opts.stateDir, "kubeconfig")
	if err := os.WriteFile(kcPath, kubeconfig, 0o600); err != nil {
		return err
	}

	kubectl := func(args ...string) error {
		// #nosec G204 -- our own kubectl with arguments this program chose
		cmd := exec.CommandContext(ctx, filepath.Join(bin, "kubectl"), append([]string{"--kubeconfig", kcPath}, args...)...)
		cmd.Stdout, cmd.Stderr = out, out
		return cmd.Run()
	}
	if err := kubectl("create", "namespace", "helmflux-system"); err != nil {
		return fmt.Errorf("create namespace helmflux-system: %w", err)
	}

	// The registry's notifications carry a token, as the git server's do.
	tokenPath := filepath.Join(opts.stateDir, registryTokenFile)
	if err := os.WriteFile(tokenPath, []byte(randomToken()), 0o600); err != nil {
		return err
	}
	logPath := filepath.Join(opts.stateDir, "operator.log")
	stopOperator, err := startOperator(opts.operator, logPath,
		"--kubeconfig", kcPath, "--listen", opts.hookAddr,
		// The demo's repositories are file:// URLs on this machine.
		"--allow-local-urls",
		// Image automation: a pass every 10s so the demo reacts quickly; tag
		// lists are reused for 5m, as against a real registry, but
		// `push-tag` notifies the receiver, which rescans at once.
		"--automation-interval=10s", "--registry-poll-interval=5m",
		"--registry-insecure-host="+registryHost, "--registry-webhook-token-file="+tokenPath)
	if err != nil {
		return err
	}
	defer stopOperator()
	fmt.Fprintf(out, "helmflux-operator is running; its log: %s\n", logPath)

	fill := strings.NewReplacer("CHART_REPOSITORY", chartRepo, defaultRegistryAddr+"/", registryHost+"/")
	repo, err := startGitServer(ctx, opts.stateDir, opts.gitAddr, "http://"+opts.hookAddr+"/hooks/helmflux-system/demo", fill)
	if err != nil {
		return err
	}
	defer repo.shutdown()
	gitSync := filepath.Join(opts.stateDir, "gitsync.yaml")
	if err := os.WriteFile(gitSync, []byte(demoGitSync(repo)), 0o600); err != nil {
		return err
	}
	if err := kubectl("apply", "-f", gitSync); err != nil {
		return fmt.Errorf("apply the demo GitSync: %w", err)
	}
	n, err := newNarrator(kcPath, out)
	if err != nil {
		return err
	}
	narrateCtx, stopNarrating := context.WithCancel(ctx)
	narrated := make(chan struct{})
	go func() { n.run(narrateCtx); close(narrated) }()
	defer func() { stopNarrating(); <-narrated }()
	fmt.Fprintln(out, "Waiting for helmflux to sync the repository and to install the HelmRelease it declares")
	if err := kubectl("wait", "-n", "helmflux-system", "gitsync/demo", "--for=condition=Ready", "--timeout=120s"); err != nil {
		return fmt.Errorf("the demo GitSync did not become ready (see %s): %w", logPath, err)
	}
	if err := kubectl("wait", "-n", "demo", "helmrelease/podinfo", "--for=condition=Ready", "--timeout=120s"); err != nil {
		return fmt.Errorf("the demo HelmRelease did not become ready (see %s): %w", logPath, err)
	}

	fmt.Fprintf(out, `
The control plane is up at %s; helmflux syncs the git repository
%s (your clone: %s) into it.
In another shell:

  export KUBECONFIG=%s PATH=%s:$PATH
  kubectl get gitsyncs,helmreleases -A
  kubectl get deployments,services,configmaps -n demo

Change something in git and watch the cluster follow, within a second:

  cd %s
  sed -i 's/Hello from git/Hello again/' apps/welcome.yaml
  git commit -qam "Change the greeting" && git push -q
  kubectl get configmap welcome -n demo -o jsonpath='{.data.greeting}'

Upgrade the Helm release the same way: the chart repository at %s
serves podinfo 6.5.0 and 6.5.1.

  sed -i 's/version: 6.5.0/version: 6.5.1/' apps/podinfo.yaml
  git commit -qam "Upgrade podinfo" && git push -q
  kubectl get helmrelease podinfo -n demo
  kubectl get events -n demo --field-selector involvedObject.name=podinfo

Let helmflux write to git: the registry at %s holds
%s/%s:6.5.0, the image values/podinfo.yaml pins, and apps/podinfo.yaml
automates that tag (fluxcd.io/automated, filter semver:~6.5). Push a newer
image, as a CI pipeline would:

  %s

Within seconds helmflux commits the new tag to values/podinfo.yaml as
"helmflux", and the release upgrades to it:

  git pull -q && git log -1 --stat
  kubectl get helmrelease podinfo -n demo
  kubectl get deployment demo-podinfo -n demo -o jsonpath='{.spec.template.spec.containers[0].image}'

Drive it with the helmflux CLI: list, roll back (automation then holds the
release at the old tag), ask why, release by hand:

  export FLUX_URL=http://%s/api/flux
  helmflux list-workloads -n demo
  helmflux rollback -w demo:helmrelease/podinfo --previous -m "6.5.1 is broken"
  helmflux why -w demo:helmrelease/podinfo
  helmflux release -w demo:helmrelease/podinfo -i %s/%s:6.5.1

Remove a file and push, and helmflux prunes what left git (prune is on).
Below, a line starting "helmflux" tells each thing helmflux does: synced,
bumped, installed, upgraded.
Press Ctrl-C (or run make demo-stop in another shell) to stop; the control
plane runs in temporary directories and is removed.
`, env.Config.Host, repo.url, repo.workDir, kcPath, bin, repo.workDir, chartRepo,
		registryHost, registryHost, demoImage, pushTagCommand(opts, registryHost, "6.5.1"), opts.hookAddr, registryHost, demoImage)
	if err := kubectl("get", "gitsyncs,helmreleases", "-A"); err != nil {
		return err
	}
	if opts.onReady != nil {
		opts.onReady(kcPath)
	}

	wait := ctx.Done()
	if opts.runFor > 0 {
		timer := time.NewTimer(opts.runFor)
		defer timer.Stop()
		select {
		case <-wait:
		case <-timer.C:
		}
	} else {
		<-wait
	}
	fmt.Fprintln(out, "Stopping the demo")
	return nil
}

// pushTagCommand is the shell command that runs `push-tag tag` against this
// demo, whose registry listens on registryHost, naming only the flags that
// differ from their defaults.
func pushTagCommand(opts options, registryHost, tag string) string {
	cmd := []string{"go", "run", "./test/demo"}
	if opts.stateDir != filepath.Join(opts.root, ".demo") {
		cmd = append(cmd, "-state-dir", opts.stateDir)
	}
	if registryHost != defaultRegistryAddr {
		cmd = append(cmd, "-registry-addr", registryHost)
	}
	if opts.hookAddr != defaultHookAddr {
		cmd = append(cmd, "-hook-addr", opts.hookAddr)
	}
	return fmt.Sprintf("(cd %s && %s push-tag %s)", opts.root, strings.Join(cmd, " "), tag)
}

// startOperator runs the operator binary with args (and a cache next to its
// log) and returns a function that stops it (SIGTERM, then SIGKILL after 10s).
func startOperator(path, logPath string, args ...string) (func(), error) {
	logFile, err := os.Create(logPath) // #nosec G304 -- our own state directory
	if err != nil {
		return nil, err
	}
	args = append(args, "--cache-dir", filepath.Join(filepath.Dir(logPath), "cache"),
		"--metrics-bind-address=0", "--health-probe-bind-address=127.0.0.1:0")
	cmd := exec.Command(path, args...) // #nosec G204 -- our own binary
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return nil, fmt.Errorf("start %s (run `make build` first): %w", path, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	return func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		_ = logFile.Close()
	}, nil
}

// demoGitSync is the GitSync that follows the demo repository, with the
// Secret its push receiver checks.
func demoGitSync(repo *gitServer) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Secret
metadata:
  name: demo-webhook
  namespace: helmflux-system
stringData:
  token: %s
---
apiVersion: helmflux.dev/v1alpha1
kind: GitSync
metadata:
  name: demo
  namespace: helmflux-system
spec:
  url: %s
  ref:
    branch: main
  paths: [apps]
  interval: 1m
  prune: true
  webhookSecretRef:
    name: demo-webhook
`, repo.token, repo.url)
}
