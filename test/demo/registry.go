package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

const (
	// defaultRegistryAddr is where the demo registry listens unless
	// -registry-addr says otherwise. The demo repository's values file names
	// its image on this address; seed rewrites it to the one in use.
	defaultRegistryAddr = "127.0.0.1:3033"
	// demoImage is the image repository the values file pins, on the demo
	// registry's host.
	demoImage = "podinfo"
	// createdLabel is the OCI annotation, set as an image label, that says
	// when an image was built; policies that order tags by time read it.
	createdLabel = "org.opencontainers.image.created"
	// registryTokenFile is the file in the state directory holding the token
	// the operator's registry receiver checks; push-tag reads it too.
	registryTokenFile = "registry-webhook-token"
)

// demoImageTags are the tags the registry starts with: the one the values
// file pins, so automation has nothing to do until the user pushes a newer
// one with `push-tag`.
var demoImageTags = []string{"6.5.0"}

// startRegistry serves an OCI registry (go-containerregistry's in-process
// one, kept in memory) over plain HTTP on addr, as `docker run registry:2`
// would, and pushes the demo image's first tags. Its log goes to logPath.
func startRegistry(ctx context.Context, addr, logPath string) (host string, shutdown func(), err error) {
	logFile, err := os.Create(logPath) // #nosec G304 -- our own state directory
	if err != nil {
		return "", nil, err
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		_ = logFile.Close()
		return "", nil, fmt.Errorf("listen on %s for the registry (is another demo running?): %w", addr, err)
	}
	logger := log.New(logFile, "", log.LstdFlags)
	srv := &http.Server{Handler: registry.New(registry.Logger(logger)), ErrorLog: logger, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	shutdown = func() {
		_ = srv.Close()
		_ = logFile.Close()
	}
	host = l.Addr().String()
	for _, tag := range demoImageTags {
		if _, err := pushImage(ctx, host, tag); err != nil {
			shutdown()
			return "", nil, err
		}
	}
	return host, shutdown, nil
}

// pushImage pushes a small random image as host/podinfo:tag, created now,
// the way a CI pipeline pushes a build, and returns its reference.
func pushImage(ctx context.Context, host, tag string) (string, error) {
	ref, err := name.NewTag(host+"/"+demoImage+":"+tag, name.Insecure) // plain HTTP
	if err != nil {
		return "", fmt.Errorf("image tag %q: %w", tag, err)
	}
	img, err := random.Image(1024, 1)
	if err != nil {
		return "", err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return "", err
	}
	cf = cf.DeepCopy()
	created := time.Now().UTC().Truncate(time.Second)
	cf.Created = v1.Time{Time: created}
	if cf.Config.Labels == nil {
		cf.Config.Labels = map[string]string{}
	}
	cf.Config.Labels[createdLabel] = created.Format(time.RFC3339)
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := remote.Write(ref, img, remote.WithContext(ctx), remote.WithAuth(authn.Anonymous)); err != nil {
		return "", fmt.Errorf("push %s (is the demo running?): %w", ref, err)
	}
	return ref.String(), nil
}

// pushTags is `demo push-tag <tag>...`: it pushes new tags of the demo image
// to the running demo's registry, then sends the operator the notification a
// registry's webhook would, so it rescans the image at once instead of
// reusing the tag list it read less than --registry-poll-interval ago.
func pushTags(ctx context.Context, opts options, out io.Writer, tags []string) error {
	if len(tags) == 0 {
		return errors.New("push-tag needs at least one tag, e.g. `push-tag 6.5.1`")
	}
	for _, tag := range tags {
		ref, err := pushImage(ctx, opts.registryAddr, tag)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "Pushed %s\n", ref)
	}
	token, err := os.ReadFile(filepath.Join(opts.stateDir, registryTokenFile)) // #nosec G304 -- our own state directory
	if err != nil {
		return fmt.Errorf("read the registry webhook token (is the demo running with -state-dir %s?): %w", opts.stateDir, err)
	}
	image := opts.registryAddr + "/" + demoImage
	answer, err := notifyRegistry(ctx, "http://"+opts.hookAddr+"/registry-hooks", image, strings.TrimSpace(string(token)))
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "Notified helmflux-operator that %s has new tags: %s\n", image, answer)
	return nil
}

// notifyRegistry posts a generic registry notification naming image and
// returns the receiver's answer.
func notifyRegistry(ctx context.Context, hook, image, token string) (string, error) {
	body, err := json.Marshal(map[string]string{"image": image})
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, hook, bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("notify %s: %w", hook, err)
	}
	defer func() { _ = resp.Body.Close() }()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	answer := string(bytes.TrimSpace(msg))
	if resp.StatusCode != http.StatusAccepted {
		return "", fmt.Errorf("notify %s: %s: %s", hook, resp.Status, answer)
	}
	return answer, nil
}
