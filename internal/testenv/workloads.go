package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// Conventions of the fake nodes that tests rely on.
const (
	// FakeNodeAnnotation marks the Nodes that kwok manages (value "fake").
	FakeNodeAnnotation = "kwok.x-k8s.io/node"
	// NeverReadyImageSuffix makes a container run but never become Ready when
	// its image ends with it (e.g. "example.com/app:never-ready"), so a test
	// can make Helm's wait time out.
	NeverReadyImageSuffix = ":never-ready"
	// StartAfterAnnotation holds a duration ("5s") a Pod stays Pending before
	// it runs and becomes Ready, for rollouts that take a while but succeed.
	StartAfterAnnotation = "helmflux.dev/start-after"
	// TestFailAnnotation set to "true" on a Pod that finishes (a Helm test
	// hook Pod or a Job's Pod) makes it end in phase Failed instead of
	// Succeeded.
	TestFailAnnotation = "helmflux.dev/test-fail"
)

// workloadControllers are the kube-controller-manager controllers that make
// workloads roll out and clean up after them; nothing that needs a cloud, a
// CA to sign with, or volumes. node-lifecycle is left out on purpose: with
// fake nodes it adds nothing but taints and evictions (see removeNotReadyTaint).
var workloadControllers = []string{
	"deployment-controller",
	"replicaset-controller",
	"statefulset-controller",
	"daemonset-controller",
	"job-controller",
	"cronjob-controller",
	"ttl-after-finished-controller",
	"garbage-collector-controller",
	"pod-garbage-collector-controller",
	"namespace-controller",
	"serviceaccount-controller",
	"serviceaccount-token-controller",
}

// WorkloadOptions configures StartWorkloads. The zero value is ready to use.
type WorkloadOptions struct {
	// Nodes is the number of fake nodes to register; 0 means 1. They are
	// named fake-node-0, fake-node-1, ... and each offers 32 CPUs, 256Gi of
	// memory and 1000 Pods.
	Nodes int
	// Dir receives the kubeconfig, kwok's stages and the logs of the
	// processes (kube-controller-manager.log, kube-scheduler.log, kwok.log).
	// Empty means a new temporary directory, which stop removes.
	Dir string
	// Output, when set, also receives everything the processes write.
	Output io.Writer
	// Timeout bounds the start, on top of ctx; 0 means one minute.
	Timeout time.Duration
	// PortForward makes pods/portforward work for fake Pods: kwok serves
	// the kubelet API on a free loopback port that the nodes advertise
	// (InternalIP 127.0.0.1), and watches kwok.x-k8s.io/v1alpha1
	// PortForward and ClusterPortForward objects (their CRDs installed
	// here), which name where a Pod's port goes — a process on the host.
	PortForward bool
}

// StartWorkloads runs kube-controller-manager, kube-scheduler and kwok against
// env's API server and registers fake nodes on which Pods get scheduled,
// start and become Ready, so Deployments, StatefulSets, DaemonSets and Jobs
// really roll out. Helm test hook Pods and Job Pods finish with phase
// Succeeded (Failed with TestFailAnnotation); containers whose image ends in
// NeverReadyImageSuffix run but never become Ready.
//
// env must be started. StartWorkloads returns when the nodes are Ready and
// the controllers work; ctx and opts.Timeout bound only that. The processes
// run until stop, which kills them and waits for them, or until the test
// process dies (on Linux, see startChild). stop may
// be called more than once and reports a process that had exited by itself;
// call it (t.Cleanup) before env.Stop. Use it once per Environment: the node
// names are fixed.
func StartWorkloads(ctx context.Context, env *envtest.Environment, opts WorkloadOptions) (stop func() error, err error) {
	if env == nil || env.Config == nil || env.ControlPlane.APIServer == nil {
		return nil, errors.New("start workloads: the environment is not started")
	}
	assets := assetsDir(env)
	if err := checkBinaries(assets, "kube-controller-manager", "kube-scheduler", "kwok"); err != nil {
		return nil, err
	}
	if opts.Nodes <= 0 {
		opts.Nodes = 1
	}
	if opts.Timeout <= 0 {
		opts.Timeout = time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()

	w := &workloads{}
	dir := opts.Dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "helmflux-workloads-"); err != nil {
			return nil, fmt.Errorf("start workloads: %w", err)
		}
		w.tempDir = dir
	}
	defer func() {
		if err != nil {
			_ = w.stop()
		}
	}()

	kubeconfig, err := AdminKubeconfig(env, dir, "helmflux-workloads")
	if err != nil {
		return nil, fmt.Errorf("start workloads: %w", err)
	}
	stages := filepath.Join(dir, "kwok-stages.yaml")
	if err := os.WriteFile(stages, []byte(kwokStages), 0o600); err != nil {
		return nil, fmt.Errorf("start workloads: %w", err)
	}
	cs, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		return nil, fmt.Errorf("start workloads: %w", err)
	}
	nodes, err := createNodes(ctx, cs, opts.Nodes)
	if err != nil {
		return nil, fmt.Errorf("start workloads: %w", err)
	}

	specs := []struct {
		name string
		args []string
		env  []string
	}{{
		name: "kube-controller-manager",
		args: []string{
			"--kubeconfig=" + kubeconfig,
			"--controllers=" + strings.Join(workloadControllers, ","),
			"--leader-elect=false",
			// No serving endpoint: nothing scrapes it, and serving needs
			// certificates and authn/authz delegation.
			"--secure-port=0",
			// envtest's kube-apiserver verifies ServiceAccount tokens with
			// this key, so the tokens of legacy token Secrets work.
			"--service-account-private-key-file=" + filepath.Join(env.ControlPlane.APIServer.CertDir, "sa-signer.key"),
			// The defaults (20 QPS) make a rollout of many releases wait on
			// the client-side rate limiter rather than on the controllers.
			"--kube-api-qps=100",
			"--kube-api-burst=200",
		},
	}, {
		// kwok does not schedule; the real scheduler binds Pods to the fake
		// nodes, honouring selectors, affinities and resources.
		name: "kube-scheduler",
		args: []string{
			"--kubeconfig=" + kubeconfig,
			"--leader-elect=false",
			"--secure-port=0",
		},
	}, {
		name: "kwok",
		args: []string{
			"--kubeconfig=" + kubeconfig,
			"--config=" + stages,
			"--manage-all-nodes=false",
			"--manage-nodes-with-annotation-selector=" + FakeNodeAnnotation + "=fake",
			"--node-lease-duration-seconds=40",
			// Room for 65k Pod IPs instead of the default /24.
			"--cidr=10.244.0.0/16",
		},
		// kwok also reads ~/.kwok/kwok.yaml; keep a developer's own out.
		env: []string{"KWOK_WORKDIR=" + filepath.Join(dir, "kwok")},
	}}
	if opts.PortForward {
		args, err := portForwardArgs(env)
		if err != nil {
			return nil, fmt.Errorf("start workloads: %w", err)
		}
		kwok := &specs[len(specs)-1]
		kwok.args = append(kwok.args, args...)
	}
	for _, s := range specs {
		p, err := startProcess(filepath.Join(assets, s.name), s.name, s.args, s.env, dir, opts.Output)
		if err != nil {
			return nil, fmt.Errorf("start workloads: %w", err)
		}
		w.procs = append(w.procs, p)
	}

	// kwok's node-initialize stage marks the nodes Ready.
	if err := w.waitFor(ctx, "fake nodes Ready", func(ctx context.Context) (bool, error) {
		return nodesReady(ctx, cs, nodes)
	}); err != nil {
		return nil, err
	}
	for _, n := range nodes {
		if err := removeNotReadyTaint(ctx, cs, n); err != nil {
			return nil, fmt.Errorf("start workloads: %w", err)
		}
	}
	// The serviceaccount controller creates default/default once its
	// informers have synced: kube-controller-manager is at work.
	if err := w.waitFor(ctx, "kube-controller-manager (ServiceAccount default/default)", func(ctx context.Context) (bool, error) {
		_, err := cs.CoreV1().ServiceAccounts(metav1.NamespaceDefault).Get(ctx, "default", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil, err
	}); err != nil {
		return nil, err
	}
	return w.stop, nil
}

// workloads is what StartWorkloads started.
type workloads struct {
	procs   []*process
	tempDir string

	once sync.Once
	err  error
}

// stop kills the processes, waits for them and removes the temporary
// directory. It reports a process that had exited before it was asked to.
func (w *workloads) stop() error {
	w.once.Do(func() {
		var errs []error
		for _, p := range w.procs {
			errs = append(errs, p.stop())
		}
		if w.tempDir != "" {
			errs = append(errs, os.RemoveAll(w.tempDir))
		}
		w.err = errors.Join(errs...)
	})
	return w.err
}

// waitFor polls cond until it holds, failing early when a process exits or
// ctx ends.
func (w *workloads) waitFor(ctx context.Context, what string, cond wait.ConditionWithContextFunc) error {
	var last error
	err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		for _, p := range w.procs {
			if err := p.exitErr(); err != nil {
				return false, err
			}
		}
		ok, err := cond(ctx)
		if err != nil {
			last = err // the API may hiccup; retry until ctx ends
		}
		return ok, nil
	})
	if err == nil {
		return nil
	}
	var exited *exitError
	if errors.As(err, &exited) {
		return fmt.Errorf("start workloads: %w", err)
	}
	if last != nil {
		err = fmt.Errorf("%w (last error: %w)", err, last)
	}
	return fmt.Errorf("start workloads: wait for %s: %w", what, err)
}

// process is one child process whose output goes to <dir>/<name>.log.
type process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	logFile *os.File
	done    chan struct{} // closed when the process has exited
	waitErr error         // valid after done is closed
	killed  bool          // stop killed it
}

func startProcess(bin, name string, args, env []string, dir string, out io.Writer) (*process, error) {
	logPath := filepath.Join(dir, name+".log")
	logFile, err := os.Create(logPath) // #nosec G703 -- dir is the caller's own (a test's temp dir or WorkloadOptions.Dir)
	if err != nil {
		return nil, err
	}
	// #nosec G204 -- the control plane binaries the developer built into ./bin
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout = logFile
	if out != nil {
		cmd.Stdout = io.MultiWriter(logFile, out)
	}
	cmd.Stderr = cmd.Stdout
	if err := startChild(cmd); err != nil {
		_ = logFile.Close()
		return nil, fmt.Errorf("run %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, logPath: logPath, logFile: logFile, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		_ = logFile.Close()
		close(p.done)
	}()
	return p, nil
}

// exitError says that a process exited by itself, with the end of its log.
type exitError struct {
	name string
	err  error
	tail string
}

func (e *exitError) Error() string {
	return fmt.Sprintf("%s exited early (%v); end of its log:\n%s", e.name, e.err, e.tail)
}

func (e *exitError) Unwrap() error { return e.err }

// exitErr returns an *exitError if the process exited without being stopped.
func (p *process) exitErr() error {
	select {
	case <-p.done:
	default:
		return nil
	}
	if p.killed {
		return nil
	}
	err := p.waitErr
	if err == nil {
		err = errors.New("exit status 0")
	}
	return &exitError{name: p.name, err: err, tail: logTail(p.logPath, 4096)}
}

func (p *process) stop() error {
	if err := p.exitErr(); err != nil {
		return err
	}
	select {
	case <-p.done:
		return nil
	default:
	}
	p.killed = true
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill %s: %w", p.name, err)
	}
	<-p.done
	return nil
}

// logTail returns about the last max bytes of a log, from a line start.
func logTail(path string, max int64) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err.Error()
	}
	off := st.Size() - max
	if off < 0 {
		off = 0
	}
	b, err := io.ReadAll(io.NewSectionReader(f, off, max))
	if err != nil {
		return err.Error()
	}
	if off > 0 {
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return string(b)
}

// assetsDir is where envtest takes its binaries from.
func assetsDir(env *envtest.Environment) string {
	if env.BinaryAssetsDirectory != "" {
		return env.BinaryAssetsDirectory
	}
	if dir := os.Getenv("KUBEBUILDER_ASSETS"); dir != "" {
		return dir
	}
	if root, err := RepoRoot(); err == nil {
		return filepath.Join(root, "bin")
	}
	return "bin"
}

// createNodes registers the fake Nodes, with the capacity the scheduler
// places Pods by. kwok fills in conditions, addresses and heartbeats.
func createNodes(ctx context.Context, cs kubernetes.Interface, n int) ([]string, error) {
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("32"),
		corev1.ResourceMemory: resource.MustParse("256Gi"),
		corev1.ResourcePods:   resource.MustParse("1000"),
	}
	names := make([]string, 0, n)
	for i := range n {
		name := "fake-node-" + strconv.Itoa(i)
		node := &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{
				Name: name,
				Labels: map[string]string{
					corev1.LabelHostname:   name,
					corev1.LabelOSStable:   "linux",
					corev1.LabelArchStable: "amd64",
					"type":                 "kwok",
				},
				Annotations: map[string]string{
					FakeNodeAnnotation:             "fake",
					"node.alpha.kubernetes.io/ttl": "0",
				},
			},
			Status: corev1.NodeStatus{
				Capacity:    capacity,
				Allocatable: capacity,
			},
		}
		if _, err := cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
			return nil, fmt.Errorf("create node %s: %w", name, err)
		}
		names = append(names, name)
	}
	return names, nil
}

func nodesReady(ctx context.Context, cs kubernetes.Interface, names []string) (bool, error) {
	for _, name := range names {
		node, err := cs.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		ready := false
		for _, c := range node.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				ready = true
			}
		}
		if !ready {
			return false, nil
		}
	}
	return true, nil
}

// removeNotReadyTaint lifts the node.kubernetes.io/not-ready:NoSchedule taint
// that kube-apiserver's TaintNodesByCondition admission plugin puts on every
// new Node. The node-lifecycle controller would lift it once the Node is
// Ready; it is not run because with fake nodes it would only add taints and
// evictions when a heartbeat is late on a busy machine.
func removeNotReadyTaint(ctx context.Context, cs kubernetes.Interface, name string) error {
	// kwok writes the Node's status meanwhile: retry on a conflict rather
	// than patch, so a concurrent change of the taints is never dropped.
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		node, err := cs.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		var keep []corev1.Taint
		for _, t := range node.Spec.Taints {
			if t.Key != corev1.TaintNodeNotReady {
				keep = append(keep, t)
			}
		}
		if len(keep) == len(node.Spec.Taints) {
			return nil
		}
		node.Spec.Taints = keep
		_, err = cs.CoreV1().Nodes().Update(ctx, node, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("remove the not-ready taint from node %s: %w", name, err)
	}
	return nil
}

// kwokStages is kwok's configuration: which changes it makes to the Nodes and
// Pods it manages. node-initialize, node-heartbeat-with-lease and pod-delete
// are kwok v0.8.0's (kustomize/stage/node/fast, node/heartbeat-with-lease,
// pod/fast) with backquoted template strings rewritten. From pod/fast:
// pod-ready also leaves containers whose image ends in ":never-ready"
// (NeverReadyImageSuffix) unready, and keeps the Pod unready with them;
// pod-complete finishes Helm test hook Pods (helm.sh/hook lists "test" or
// "test-success") besides Job Pods, and only Ready ones, so a never-ready
// Pod never finishes; pod-fail is new: the same Pods with
// helmflux.dev/test-fail: "true" (TestFailAnnotation) end Failed, exit code 1.
// The selectors of pod-complete and pod-fail exclude each other: when several
// stages match, kwok picks one at random.
const kwokStages = `apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: node-initialize
spec:
  resourceRef:
    apiGroup: v1
    kind: Node
  selector:
    matchExpressions:
    - key: '.status.conditions.[] | select( .type == "Ready" ) | .status'
      operator: 'NotIn'
      values:
      - 'True'
  next:
    statusTemplate: |
      {{ $now := Now }}
      {{ $lastTransitionTime := or .metadata.creationTimestamp $now }}
      conditions:
      {{ range NodeConditions }}
      - lastHeartbeatTime: {{ $now | Quote }}
        lastTransitionTime: {{ $lastTransitionTime | Quote }}
        message: {{ .message | Quote }}
        reason: {{ .reason | Quote }}
        status: {{ .status | Quote }}
        type: {{ .type  | Quote}}
      {{ end }}

      {{ $hasInternalIP := false }}
      {{ $hasHostname := false }}
      {{ range .status.addresses }}
        {{ if eq .type "InternalIP" }}
          {{ $hasInternalIP = true }}
        {{ end }}
        {{ if eq .type "Hostname" }}
          {{ $hasHostname = true }}
        {{ end }}
      {{ end }}
      {{ if or (not $hasInternalIP) (not $hasHostname) }}
      addresses:
      {{ end }}
      {{ if not $hasInternalIP }}
      {{ with NodeIP }}
      - address: {{ . | Quote }}
        type: InternalIP
      {{ end }}
      {{ end }}
      {{ if not $hasHostname }}
      {{ with NodeName }}
      - address: {{ . | Quote }}
        type: Hostname
      {{ end }}
      {{ end }}

      {{ with NodePort }}
      daemonEndpoints:
        kubeletEndpoint:
          Port: {{ . }}
      {{ end }}

      allocatable:
      {{ with .status.allocatable }}
      {{ YAML . 1 }}
      {{ else }}
        cpu: 1k
        memory: 1Ti
        pods: 1M
      {{ end }}
      capacity:
      {{ with .status.capacity }}
      {{ YAML . 1 }}
      {{ else }}
        cpu: 1k
        memory: 1Ti
        pods: 1M
      {{ end }}

      {{ $nodeInfo := .status.nodeInfo }}
      {{ $kwokVersion := printf "kwok-%s" Version }}
      nodeInfo:
        architecture: {{ or $nodeInfo.architecture "amd64" }}
        bootID: {{ or $nodeInfo.bootID "\"\"" }}
        containerRuntimeVersion: {{ or $nodeInfo.containerRuntimeVersion $kwokVersion }}
        kernelVersion: {{ or $nodeInfo.kernelVersion $kwokVersion }}
        kubeProxyVersion: {{ or $nodeInfo.kubeProxyVersion $kwokVersion }}
        kubeletVersion: {{ or $nodeInfo.kubeletVersion $kwokVersion }}
        machineID: {{ or $nodeInfo.machineID "\"\"" }}
        operatingSystem: {{ or $nodeInfo.operatingSystem "linux" }}
        osImage: {{ or $nodeInfo.osImage "\"\"" }}
        systemUUID: {{ or $nodeInfo.systemUUID "\"\"" }}
      phase: Running
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: node-heartbeat-with-lease
spec:
  resourceRef:
    apiGroup: v1
    kind: Node
  selector:
    matchExpressions:
    - key: '.status.phase'
      operator: 'In'
      values:
      - 'Running'
    - key: '.status.conditions.[] | select( .type == "Ready" ) | .status'
      operator: 'In'
      values:
      - 'True'
  delay:
    durationMilliseconds: 600000
    jitterDurationMilliseconds: 610000
  next:
    statusTemplate: |
      {{ $now := Now }}
      {{ $lastTransitionTime := or .metadata.creationTimestamp $now }}
      conditions:
      {{ range NodeConditions }}
      - lastHeartbeatTime: {{ $now | Quote }}
        lastTransitionTime: {{ $lastTransitionTime | Quote }}
        message: {{ .message | Quote }}
        reason: {{ .reason | Quote }}
        status: {{ .status | Quote }}
        type: {{ .type | Quote }}
      {{ end }}

      addresses:
      {{ with .status.addresses }}
      {{ YAML . 1 }}
      {{ else }}
      {{ with NodeIP }}
      - address: {{ . | Quote }}
        type: InternalIP
      {{ end }}
      {{ with NodeName }}
      - address: {{ . | Quote }}
        type: Hostname
      {{ end }}
      {{ end }}

      {{ with NodePort }}
      daemonEndpoints:
        kubeletEndpoint:
          Port: {{ . }}
      {{ end }}
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-ready
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  delay:
    durationMilliseconds: 0
    durationFrom:
      jq:
        expression: '.metadata.annotations["helmflux.dev/start-after"]'
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: 'DoesNotExist'
    - key: '.status.phase'
      operator: 'In'
      values:
      - 'Pending'
    - key: '.status.conditions.[] | select( .type == "Ready" ) | .status'
      operator: 'NotIn'
      values:
      - 'True'
  next:
    statusTemplate: |
      {{ $now := Now }}
      {{ $ready := true }}
      {{ range .spec.containers }}
      {{ if hasSuffix ":never-ready" .image }}
      {{ $ready = false }}
      {{ end }}
      {{ end }}

      conditions:
      - lastTransitionTime: {{ $now | Quote }}
        status: "True"
        type: Initialized
      {{ if $ready }}
      - lastTransitionTime: {{ $now | Quote }}
        status: "True"
        type: Ready
      - lastTransitionTime: {{ $now | Quote }}
        status: "True"
        type: ContainersReady
      {{ else }}
      - lastTransitionTime: {{ $now | Quote }}
        status: "False"
        type: Ready
        reason: ContainersNotReady
        message: "containers with unready status"
      - lastTransitionTime: {{ $now | Quote }}
        status: "False"
        type: ContainersReady
        reason: ContainersNotReady
        message: "containers with unready status"
      {{ end }}
      {{ range .spec.readinessGates }}
      - lastTransitionTime: {{ $now | Quote }}
        status: "True"
        type: {{ .conditionType | Quote }}
      {{ end }}

      containerStatuses:
      {{ range .spec.containers }}
      - image: {{ .image | Quote }}
        name: {{ .name | Quote }}
        ready: {{ not (hasSuffix ":never-ready" .image) }}
        restartCount: 0
        started: true
        state:
          running:
            startedAt: {{ $now | Quote }}
      {{ end }}

      initContainerStatuses:
      {{ range .spec.initContainers }}
      - image: {{ .image | Quote }}
        name: {{ .name | Quote }}
        ready: true
        restartCount: 0
        {{ if eq .restartPolicy "Always" }}
        started: true
        state:
          running:
            startedAt: {{ $now | Quote }}
        {{ else }}
        state:
          terminated:
            exitCode: 0
            finishedAt: {{ $now | Quote }}
            reason: Completed
            startedAt: {{ $now | Quote }}
        {{ end }}
      {{ end }}
      {{ $hostIPs := NodeIPsWith .spec.nodeName }}
      {{ with $hostIPs }}
      hostIP: {{ index . 0 | Quote }}
      hostIPs:
      {{ range . }}
      - ip: {{ . | Quote }}
      {{ end }}
      {{ end }}
      {{ $podIPs := PodIPsWith .spec.nodeName ( or .spec.hostNetwork false ) ( or .metadata.uid "" ) ( or .metadata.name "" ) ( or .metadata.namespace "" ) }}
      {{ with $podIPs }}
      podIP: {{ index . 0 | Quote }}
      podIPs:
      {{ range . }}
      - ip: {{ . | Quote }}
      {{ end }}
      {{ end }}
      phase: Running
      startTime: {{ $now | Quote }}
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-complete
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: 'DoesNotExist'
    - key: '.status.phase'
      operator: 'In'
      values:
      - 'Running'
    - key: '.status.conditions.[] | select( .type == "Ready" ) | .status'
      operator: 'In'
      values:
      - 'True'
    - key: '(any(.metadata.ownerReferences[]?; .kind == "Job")) or ((.metadata.annotations["helm.sh/hook"] // "") | split(",") | any(.[]; gsub("\\s"; "") | . == "test" or . == "test-success"))'
      operator: 'In'
      values:
      - 'true'
    - key: '.metadata.annotations["helmflux.dev/test-fail"]'
      operator: 'NotIn'
      values:
      - 'true'
  next:
    statusTemplate: |
      {{ $now := Now }}
      conditions:
      - lastTransitionTime: {{ $now | Quote }}
        status: "False"
        type: Ready
        reason: PodCompleted
      - lastTransitionTime: {{ $now | Quote }}
        status: "False"
        type: ContainersReady
        reason: PodCompleted
      containerStatuses:
      {{ range .spec.containers }}
      - image: {{ .image | Quote }}
        name: {{ .name | Quote }}
        ready: false
        restartCount: 0
        started: false
        state:
          terminated:
            exitCode: 0
            finishedAt: {{ $now | Quote }}
            reason: Completed
            startedAt: {{ $now | Quote }}
      {{ end }}
      phase: Succeeded
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-fail
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: 'DoesNotExist'
    - key: '.status.phase'
      operator: 'In'
      values:
      - 'Running'
    - key: '.status.conditions.[] | select( .type == "Ready" ) | .status'
      operator: 'In'
      values:
      - 'True'
    - key: '(any(.metadata.ownerReferences[]?; .kind == "Job")) or ((.metadata.annotations["helm.sh/hook"] // "") | split(",") | any(.[]; gsub("\\s"; "") | . == "test" or . == "test-success"))'
      operator: 'In'
      values:
      - 'true'
    - key: '.metadata.annotations["helmflux.dev/test-fail"]'
      operator: 'In'
      values:
      - 'true'
  next:
    statusTemplate: |
      {{ $now := Now }}
      conditions:
      - lastTransitionTime: {{ $now | Quote }}
        status: "False"
        type: Ready
        reason: PodFailed
      - lastTransitionTime: {{ $now | Quote }}
        status: "False"
        type: ContainersReady
        reason: PodFailed
      containerStatuses:
      {{ range .spec.containers }}
      - image: {{ .image | Quote }}
        name: {{ .name | Quote }}
        ready: false
        restartCount: 0
        started: false
        state:
          terminated:
            exitCode: 1
            finishedAt: {{ $now | Quote }}
            reason: Error
            startedAt: {{ $now | Quote }}
      {{ end }}
      phase: Failed
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-delete
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: 'Exists'
  next:
    delete: true
`
