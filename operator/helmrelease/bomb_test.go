package helmrelease_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/fluxcd/pkg/apis/meta"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	helmv1 "github.com/helmflux/helmflux/api/helm/v1"
	"github.com/helmflux/helmflux/pkg/helm"
	"github.com/helmflux/helmflux/pkg/helm/helmtest"
)

// bombSize is what the forged record expands to: 768 MiB, the most that
// fits a Secret (its data is at most 1 MiB, gzip's ratio about 1:1000).
const bombSize = 768 << 20

// gzipBomb is base64(gzip(bombSize zeros)), as Helm stores a record.
func gzipBomb(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	zeros := make([]byte, 1<<20)
	for range bombSize / len(zeros) {
		if _, err := w.Write(zeros); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return []byte(base64.StdEncoding.EncodeToString(buf.Bytes()))
}

// A release record (Secret) forged by someone who may write Secrets in the
// namespace, whose gzip expands to 768 MiB, is refused without being read
// whole: the HelmRelease of that release says which Secret and the limit,
// with a Warning Event; a release next to it keeps being reconciled.
func TestGzipBombReleaseRecordIsRefused(t *testing.T) {
	ns := newNamespace(t)
	repo := helmtest.NewRepoServer(t)
	repo.Add(t, appChart("1.0.0"))
	for _, name := range []string{"bombed", "other"} {
		mustCreateHR(t, repoRelease(ns, name, repo.URL(), "1.0.0", "replicaCount: 1"))
	}
	for _, name := range []string{"bombed", "other"} {
		waitReady(t, ns, name)
	}
	release := ns + "-bombed"
	secret := fmt.Sprintf("sh.helm.release.v1.%s.v2", release)
	mustCreate(t, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: secret, Labels: map[string]string{
			"owner": "helm", "name": release, "version": "2", "status": "deployed",
		}},
		Type: "helm.sh/release.v1",
		Data: map[string][]byte{"release": gzipBomb(t)},
	})

	// In this process, a read of the release's records stops at the
	// limit: it allocates a small part of what the record expands to.
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := runner.Last(context.Background(), ns, release)
	runtime.ReadMemStats(&after)
	var tooLarge *helm.RecordTooLargeError
	if !errors.As(err, &tooLarge) || !errors.Is(err, helm.ErrRecordRefused) || tooLarge.Secret != secret {
		t.Fatalf("Last = %v, want a RecordTooLargeError naming %s", err, secret)
	}
	// The whole process (the suite's operator too) allocated less than a
	// quarter of the bomb meanwhile.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > bombSize/4 {
		t.Errorf("reading the records allocated %d MiB", alloc>>20)
	}

	hr := waitCondition(t, ns, "bombed", meta.ReadyCondition, "False "+helmv1.ReleaseRecordRefusedReason)
	c := condition(hr, meta.ReadyCondition)
	limit := fmt.Sprint(helm.DefaultMaxRecordSize)
	for _, want := range []string{ns + "/" + secret, limit} {
		if !strings.Contains(c, want) {
			t.Errorf("Ready does not name %s: %s", want, c)
		}
	}
	waitEvent(t, ns, "bombed", helmv1.ReleaseRecordRefusedReason, secret)

	// The release next to it is still upgraded.
	update(t, ns, "other", func(hr *helmv1.HelmRelease) { hr.Spec.Values = mustValues("replicaCount: 2") })
	waitReady(t, ns, "other")
	if r := *deployment(t, ns, ns+"-other").Spec.Replicas; r != 2 {
		t.Errorf("the other release's replicas: %d, want 2", r)
	}
}
