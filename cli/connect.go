package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"
	"k8s.io/streaming/pkg/httpstream"
)

// Where the operator is found when no --url is given. helmflux's chart
// and config/default label the operator's Pod app.kubernetes.io/name=
// helmflux in helmflux-system; fluxctl's own default selector (app=flux)
// is tried next, as fluxctl tried its second selector, so a Pod labelled
// for fluxctl is found too.
const (
	defaultFwdNamespace = "helmflux-system"
	defaultFwdLabels    = "app.kubernetes.io/name=helmflux"
	fluxctlFwdLabels    = "app=flux"
	// apiPort is the Pod port of the API when the Pod names no port "http":
	// fluxd's, and the chart's.
	apiPort = 3030
	// apiPrefix is where the operator mounts the API.
	apiPrefix = "/api/flux"
	// leaseName is the operator's leader election Lease, in its namespace;
	// its holderIdentity is "<hostname>_<random>", the hostname being the
	// leader's Pod name.
	leaseName = "helmflux-operator.helmflux.dev"
)

// options are the flags every command shares, with fluxctl's names and
// environment variables.
type options struct {
	url        string
	token      string
	fwdNS      string
	fwdLabels  string
	context    string
	kubeconfig string
	timeout    time.Duration
}

func envOr(def string, names ...string) string {
	for _, n := range names {
		if v := os.Getenv(n); v != "" {
			return v
		}
	}
	return def
}

func (o *options) addFlags(root *cobra.Command) {
	f := root.PersistentFlags()
	f.StringVarP(&o.url, "url", "u", envOr("", "FLUX_URL"),
		"base URL of the operator's API, e.g. http://127.0.0.1:3030/api/flux (env FLUX_URL); without it, a port-forward to the operator's Pod")
	f.StringVarP(&o.token, "token", "t", envOr("", "FLUX_SERVICE_TOKEN"),
		"the operator's API token, when it runs with --api-token-file (env FLUX_SERVICE_TOKEN)")
	f.StringVar(&o.fwdNS, "k8s-fwd-ns", envOr(defaultFwdNamespace, "FLUX_FORWARD_NAMESPACE"),
		"namespace of the operator's Pod, for the port-forward (env FLUX_FORWARD_NAMESPACE)")
	f.StringVar(&o.fwdLabels, "k8s-fwd-labels", envOr(defaultFwdLabels, "FLUX_FORWARD_LABELS"),
		"label selector of the operator's Pod, for the port-forward (env FLUX_FORWARD_LABELS)")
	f.StringVar(&o.context, "context", "", "kubeconfig context to use (default: the current context)")
	f.StringVar(&o.kubeconfig, "kubeconfig", "", "path of the kubeconfig (default: $KUBECONFIG, then ~/.kube/config)")
	timeout := 60 * time.Second
	if d, err := time.ParseDuration(os.Getenv("FLUX_TIMEOUT")); err == nil {
		timeout = d
	}
	f.DurationVar(&o.timeout, "timeout", timeout, "how long to wait for a job, a sync or a rollout (env FLUX_TIMEOUT)")
}

// kubeLoader reads the kubeconfig by the usual rules, with --kubeconfig and
// --context on top.
func (o *options) kubeLoader() clientcmd.ClientConfig {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if o.kubeconfig != "" {
		rules.ExplicitPath = o.kubeconfig
	}
	return clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: o.context})
}

// namespace is the namespace of unqualified workload names: -n, else the
// kubeconfig context's, else "default" (fluxctl's rule, --url or not).
func (o *options) namespace(flag string) string {
	if flag != "" {
		return flag
	}
	if ns, _, err := o.kubeLoader().Namespace(); err == nil && ns != "" {
		return ns
	}
	return "default"
}

// connection is a way to the API: its base URL and, for a port-forward,
// how to close it.
type connection struct {
	base  string
	close func()
}

// connect returns the API's base URL: --url, or a port-forward to the
// operator's Pod.
func (o *options) connect(ctx context.Context, errOut io.Writer) (*connection, error) {
	if o.url != "" {
		base := strings.TrimRight(o.url, "/")
		if !strings.HasPrefix(base, "http://") && !strings.HasPrefix(base, "https://") {
			return nil, usageError("--url %q is not an http:// or https:// URL", o.url)
		}
		return &connection{base: base, close: func() {}}, nil
	}
	cfg, err := o.kubeLoader().ClientConfig()
	if err != nil {
		return nil, withCode(exitUnreachable, fmt.Errorf("no --url and no usable kubeconfig to port-forward with: %w (set --url, or --kubeconfig/--context)", err))
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, withCode(exitUnreachable, err)
	}
	pod, port, err := o.findPod(ctx, cs)
	if err != nil {
		return nil, err
	}
	local, stop, err := forward(cfg, cs, pod, port, errOut)
	if err != nil {
		return nil, withCode(exitUnreachable, fmt.Errorf("port-forward to Pod %s/%s port %d: %w", pod.Namespace, pod.Name, port, err))
	}
	return &connection{base: "http://127.0.0.1:" + strconv.Itoa(local) + apiPrefix, close: stop}, nil
}

// findPod finds the operator Pod to talk to: one Running Pod matching
// --k8s-fwd-labels, then fluxctl's app=flux when the labels are the default
// and match nothing. Of several replicas it picks the leader, the holder of
// the operator's Lease, so that every command reaches the same replica
// (jobs and their status live in one process), and without a leader to be
// found (no Lease, or no right to read it) the first ready Pod by name.
func (o *options) findPod(ctx context.Context, cs kubernetes.Interface) (*corev1.Pod, int, error) {
	selectors := []string{o.fwdLabels}
	if o.fwdLabels == defaultFwdLabels {
		selectors = append(selectors, fluxctlFwdLabels)
	}
	for _, sel := range selectors {
		list, err := cs.CoreV1().Pods(o.fwdNS).List(ctx, metav1.ListOptions{LabelSelector: sel, FieldSelector: "status.phase=Running"})
		if err != nil {
			return nil, 0, withCode(exitUnreachable, fmt.Errorf("list the operator's Pods (%s in namespace %s): %w", sel, o.fwdNS, err))
		}
		switch len(list.Items) {
		case 0:
			continue
		case 1:
			pod := &list.Items[0]
			return pod, podPort(pod), nil
		default:
			if pod := pickPod(list.Items, leaseHolder(ctx, cs, o.fwdNS)); pod != nil {
				return pod, podPort(pod), nil
			}
			var names []string
			for _, p := range list.Items {
				names = append(names, p.Name)
			}
			return nil, 0, withCode(exitUnreachable, fmt.Errorf("%d running Pods match %s in namespace %s (%s), none of them ready nor holding the Lease %s: set --k8s-fwd-labels to pick one, or --url",
				len(names), sel, o.fwdNS, strings.Join(names, ", "), leaseName))
		}
	}
	return nil, 0, withCode(exitUnreachable, fmt.Errorf("no running operator Pod matches %s in namespace %s: set --k8s-fwd-ns or --k8s-fwd-labels, or --url",
		strings.Join(selectors, " or "), o.fwdNS))
}

// leaseHolder returns the Pod name of the operator's leader, from the
// holderIdentity of its Lease in ns; "" when there is none to be read.
func leaseHolder(ctx context.Context, cs kubernetes.Interface, ns string) string {
	lease, err := cs.CoordinationV1().Leases(ns).Get(ctx, leaseName, metav1.GetOptions{})
	if err != nil || lease.Spec.HolderIdentity == nil {
		return ""
	}
	name, _, _ := strings.Cut(*lease.Spec.HolderIdentity, "_")
	return name
}

// pickPod picks, of several Running Pods, the one named holder, else the
// first ready one by name; nil when none is ready.
func pickPod(pods []corev1.Pod, holder string) *corev1.Pod {
	var first *corev1.Pod
	for i := range pods {
		p := &pods[i]
		if holder != "" && p.Name == holder {
			return p
		}
		if podReady(p) && (first == nil || p.Name < first.Name) {
			first = p
		}
	}
	return first
}

// podReady says whether the Pod's Ready condition is True.
func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// podPort is the Pod's port named "http" (the chart's API port), else 3030.
func podPort(pod *corev1.Pod) int {
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			if p.Name == "http" {
				return int(p.ContainerPort)
			}
		}
	}
	return apiPort
}

// forward opens a port-forward from a free port on 127.0.0.1 to the Pod's
// port, over WebSockets where the API server offers them and SPDY
// otherwise, as kubectl port-forward does; it returns the local port.
func forward(cfg *rest.Config, cs kubernetes.Interface, pod *corev1.Pod, port int, errOut io.Writer) (int, func(), error) {
	req := cs.CoreV1().RESTClient().Post().Resource("pods").Namespace(pod.Namespace).Name(pod.Name).SubResource("portforward")
	transport, upgrader, err := spdy.RoundTripperFor(cfg)
	if err != nil {
		return 0, nil, err
	}
	dialer := spdy.NewDialerForStreaming(upgrader, &http.Client{Transport: transport}, http.MethodPost, req.URL())
	if ws, err := portforward.NewSPDYOverWebsocketDialerForStreaming(req.URL(), cfg); err == nil {
		dialer = portforward.NewFallbackDialerForStreaming(ws, dialer, func(err error) bool {
			return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
		})
	}
	stop, ready := make(chan struct{}), make(chan struct{})
	fw, err := portforward.NewOnAddressesForStreaming(dialer, []string{"127.0.0.1"}, []string{"0:" + strconv.Itoa(port)}, stop, ready, io.Discard, errOut)
	if err != nil {
		return 0, nil, err
	}
	failed := make(chan error, 1)
	go func() { failed <- fw.ForwardPorts() }()
	select {
	case <-ready:
	case err := <-failed:
		if err == nil {
			err = errors.New("the port-forward ended before it was ready")
		}
		return 0, nil, err
	case <-time.After(30 * time.Second):
		close(stop)
		return 0, nil, errors.New("the port-forward was not ready within 30s")
	}
	ports, err := fw.GetPorts()
	if err != nil || len(ports) == 0 {
		close(stop)
		return 0, nil, fmt.Errorf("no local port: %w", err)
	}
	return int(ports[0].Local), func() { close(stop) }, nil
}
