package automation_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	"github.com/go-git/go-git/v5/plumbing/object"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	helmfluxv1alpha1 "github.com/helmflux/helmflux/api/helmflux/v1alpha1"
	"github.com/helmflux/helmflux/internal/testenv"
	"github.com/helmflux/helmflux/operator/automation"
	"github.com/helmflux/helmflux/pkg/git/gittest"
	"github.com/helmflux/helmflux/pkg/registry/registrytest"
)

// refuseHook is a server hook that refuses every push, as a protected
// branch does.
const refuseHook = `#!/bin/sh
echo "main is a protected branch" >&2
exit 1
`

// TestARefusedPushIsPushFailed: a remote that refuses the push (a server
// hook, a protected branch) ends the pass with PushFailed and a Warning
// Event that say so, and nothing reaches the remote; the git password shows
// nowhere.
func TestARefusedPushIsPushFailed(t *testing.T) {
	const canary = "canary-GitPa55-0b7c"
	ns := newNamespace(t)
	reg := registrytest.NewServer(t)
	reg.PushTags(t, "team/app", "1.0.0", "1.0.1")
	repo := gittest.NewRepo(t, map[string]string{"apps/app.yaml": plainDeploy(ns, reg.Host(), "app", "semver:~1.0")})
	repo.Hook("pre-receive", refuseHook)
	before := repo.Head()
	srv := gittest.NewHTTPServer(t, repo.Root(), gittest.WithBasicAuth("git", canary))
	gitSecret(t, ns, "git", "git", canary)
	createGitSync(t, ns, "apps", srv.URL(gittest.RepoName), func(gs *helmfluxv1alpha1.GitSync) {
		gs.Spec.SecretRef = &meta.LocalObjectReference{Name: "git"}
		gs.Spec.AllowInsecureHTTP = true // the test server is plain http://
	})

	eventually(t, time.Minute, "the refused push reported", func() (bool, string) {
		got := automationReady(getGitSync(t, ns, "apps"))
		return strings.HasPrefix(got, "False "+helmfluxv1alpha1.PushFailedReason+": ") && strings.Contains(got, "pre-receive hook declined"), got
	})
	waitEvent(t, ns, helmfluxv1alpha1.PushFailedReason, "pre-receive hook declined")
	if h := repo.RemoteHead("main").Hash.String(); h != before {
		t.Fatalf("the remote moved to %s", h)
	}
	assertNoCanary(t, canary, repo)
}

// TestPushBranchStacksCommitsAndLeavesTheFollowedBranch: with
// writeBack.pushBranch, the first pass creates the push branch from the
// followed branch, later passes stack on it, the cluster keeps running the
// followed branch, and once the push branch is merged and deleted the next
// pass starts again from the followed branch.
func TestPushBranchStacksCommitsAndLeavesTheFollowedBranch(t *testing.T) {
	const push = "helmflux/image-updates"
	ns := newNamespace(t)
	reg := registrytest.NewServer(t)
	host := reg.Host()
	reg.PushTags(t, "team/app", "1.0.0", "1.0.1")
	repo := gittest.NewRepo(t, map[string]string{"apps/app.yaml": plainDeploy(ns, host, "app", "semver:~1.0")})
	main := repo.Head()
	createGitSync(t, ns, "apps", repo.URL(), func(gs *helmfluxv1alpha1.GitSync) {
		gs.Spec.WriteBack = &helmfluxv1alpha1.WriteBack{PushBranch: push}
	})

	first := waitPushBranchTag(t, repo, push, "1.0.1")
	if len(first.ParentHashes) != 1 || first.ParentHashes[0].String() != main {
		t.Fatalf("the first commit on %s has parents %v, want the followed branch's head %s", push, first.ParentHashes, main)
	}
	// The status is written after the push.
	eventually(t, 30*time.Second, "lastPushedCommit on "+push, func() (bool, string) {
		ia := getGitSync(t, ns, "apps").Status.ImageAutomation
		if ia == nil {
			return false, "no status.imageAutomation"
		}
		return ia.LastPushedCommit == push+"@sha1:"+first.Hash.String(), ia.LastPushedCommit
	})

	reg.PushTags(t, "team/app", "1.0.2")
	notify(t, host+"/team/app")
	second := waitPushBranchTag(t, repo, push, "1.0.2")
	if len(second.ParentHashes) != 1 || second.ParentHashes[0] != first.Hash {
		t.Fatalf("the second commit has parents %v, want it stacked on %s", second.ParentHashes, first.Hash)
	}
	if h := repo.RemoteHead("main").Hash.String(); h != main {
		t.Fatalf("the followed branch moved to %s", h)
	}
	// A sync that began after both pushes still applies the followed branch.
	gs := getGitSync(t, ns, "apps")
	token := testenv.RequestReconcile(t, k8s, gs)
	eventually(t, time.Minute, "the requested sync", func() (bool, string) {
		gs = getGitSync(t, ns, "apps")
		return gs.Status.LastHandledReconcileAt == token, gs.Status.LastHandledReconcileAt
	})
	if !strings.HasSuffix(gs.Status.LastAppliedRevision, "@sha1:"+main) {
		t.Errorf("the GitSync applied %s, want the followed branch's head %s", gs.Status.LastAppliedRevision, main)
	}
	waitImage(t, ns, "app", host+"/team/app:1.0.0")

	// A person merges the push branch and deletes it: the next pass starts
	// from the followed branch again, and creates the push branch anew.
	repo.SetRemoteBranch("main", second.Hash.String())
	repo.SetRemoteBranch(push, "")
	reg.PushTags(t, "team/app", "1.0.3")
	notify(t, host+"/team/app")
	third := waitPushBranchTag(t, repo, push, "1.0.3")
	if len(third.ParentHashes) != 1 || third.ParentHashes[0] != second.Hash {
		t.Fatalf("after the merge the commit has parents %v, want the merged followed branch %s", third.ParentHashes, second.Hash)
	}
}

// waitPushBranchTag waits until branch exists and sets apps/app.yaml's
// image tag, and returns its head.
func waitPushBranchTag(t *testing.T, repo *gittest.Repo, branch, tag string) *object.Commit {
	t.Helper()
	var head *object.Commit
	eventually(t, time.Minute, branch+" at "+tag, func() (bool, string) {
		if head = repo.LookupRemoteHead(branch); head == nil {
			return false, "no branch " + branch
		}
		s := repo.FileAt(head, "apps/app.yaml")
		return strings.Contains(s, ":"+tag+"\n"), s
	})
	return head
}

// TestSignedCommitsPassTheGitSyncsVerification: with writeBack.signingKey
// (an encrypted key and its passphrase), the automation commit is signed by
// that key, so a GitSync that verifies the head with the key's public half
// applies it; neither the passphrase nor the private key shows anywhere.
func TestSignedCommitsPassTheGitSyncsVerification(t *testing.T) {
	const passphrase = "canary-KeyPa55-2e9d"
	ns := newNamespace(t)
	reg := registrytest.NewServer(t)
	host := reg.Host()
	reg.PushTags(t, "team/app", "1.0.0", "1.0.1")
	key := gittest.NewOpenPGPKey(t, "automation")
	private := key.PrivateArmored(t, passphrase)
	repo := gittest.NewRepo(t, nil)
	base := repo.CommitFiles("signed by a person", map[string]string{"apps/app.yaml": plainDeploy(ns, host, "app", "semver:~1.0")}, gittest.SignedBy(key))
	for name, data := range map[string]map[string][]byte{
		"keys":    {"automation.asc": []byte(key.PublicArmored)},
		"signing": {automation.SigningKeyKey: private, automation.SigningPassphraseKey: []byte(passphrase)},
	} {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Data: data}
		if err := k8s.Create(context.Background(), s); err != nil {
			t.Fatal(err)
		}
	}
	createGitSync(t, ns, "apps", repo.URL(), func(gs *helmfluxv1alpha1.GitSync) {
		gs.Spec.Verify = &helmfluxv1alpha1.GitVerification{Mode: helmfluxv1alpha1.VerifyHead, SecretRef: &meta.LocalObjectReference{Name: "keys"}}
		gs.Spec.WriteBack = &helmfluxv1alpha1.WriteBack{SigningKey: &meta.LocalObjectReference{Name: "signing"}}
	})

	var head *object.Commit
	eventually(t, time.Minute, "the automation commit", func() (bool, string) {
		head = repo.RemoteHead("main")
		return head.Hash.String() != base, automationReady(getGitSync(t, ns, "apps"))
	})
	if head.PGPSignature == "" {
		t.Fatal("the automation commit is not signed")
	}
	signer, err := head.Verify(key.PublicArmored)
	if err != nil {
		t.Fatalf("the automation commit's signature does not verify with the key's public half: %v", err)
	}
	if signer.PrimaryKey.KeyId != key.Entity.PrimaryKey.KeyId {
		t.Errorf("signed by key %X, want %X", signer.PrimaryKey.KeyId, key.Entity.PrimaryKey.KeyId)
	}
	if _, err := head.Verify(gittest.NewOpenPGPKey(t, "someone else").PublicArmored); err == nil {
		t.Error("the signature verifies with an unrelated key too")
	}
	// The GitSync, which trusts only that key, applies the commit.
	waitImage(t, ns, "app", host+"/team/app:1.0.1")
	if got := getGitSync(t, ns, "apps").Status.LastAppliedRevision; !strings.HasSuffix(got, "@sha1:"+head.Hash.String()) {
		t.Errorf("the GitSync applied %s, want the signed automation commit %s", got, head.Hash)
	}
	assertNoCanary(t, passphrase, repo)
	// A line of the armored private key stands for all of it.
	lines := strings.Split(strings.TrimSpace(string(private)), "\n")
	assertNoCanary(t, lines[len(lines)/2], repo)
}

// ignoreDeploy is plainDeploy with a fluxcd.io/ignore-style annotation.
func ignoreDeploy(ns, host, name, key, value string) string {
	return strings.Replace(plainDeploy(ns, host, name, "semver:~1.0"),
		"  annotations:\n", "  annotations:\n    "+key+": "+value+"\n", 1)
}

// TestIgnoredObjectsAreNotAutomated: fluxcd.io/ignore: "true" (and its
// flux.weave.works/ spelling) makes automation skip an automated object:
// its image is neither scanned nor counted nor changed; sync_only concerns
// syncing only, so such an object is automated, applied and rolled.
func TestIgnoredObjectsAreNotAutomated(t *testing.T) {
	ns := newNamespace(t)
	reg := registrytest.NewServer(t)
	host := reg.Host()
	for _, r := range []string{"team/plain", "team/ignored", "team/legacy", "team/synconly"} {
		reg.PushTags(t, r, "1.0.0", "1.0.1")
	}
	repo := gittest.NewRepo(t, map[string]string{
		"apps/plain.yaml":    plainDeploy(ns, host, "plain", "semver:~1.0"),
		"apps/ignored.yaml":  ignoreDeploy(ns, host, "ignored", "fluxcd.io/ignore", `"true"`),
		"apps/legacy.yaml":   ignoreDeploy(ns, host, "legacy", "flux.weave.works/ignore", `"true"`),
		"apps/synconly.yaml": ignoreDeploy(ns, host, "synconly", "fluxcd.io/ignore", "sync_only"),
	})
	before := repo.Head()
	createGitSync(t, ns, "apps", repo.URL(), nil)

	var head *object.Commit
	eventually(t, time.Minute, "the automation commit", func() (bool, string) {
		head = repo.RemoteHead("main")
		return head.Hash.String() != before, automationReady(getGitSync(t, ns, "apps"))
	})
	// One pass, one commit: what it left out, it left out on purpose.
	if changed := strings.Join(gittest.ChangedPaths(t, head), ","); changed != "apps/plain.yaml,apps/synconly.yaml" {
		t.Fatalf("the commit changed %s, want apps/plain.yaml and apps/synconly.yaml", changed)
	}
	for _, r := range reg.Requests() {
		if strings.Contains(r.Path, "/team/ignored/") || strings.Contains(r.Path, "/team/legacy/") {
			t.Errorf("the image of an ignored object was scanned: %s %s", r.Method, r.Path)
		}
	}
	// The status of the pass is written after its push: wait for it.
	var ia *helmfluxv1alpha1.ImageAutomationStatus
	eventually(t, time.Minute, "the status of the pass that pushed", func() (bool, string) {
		ia = getGitSync(t, ns, "apps").Status.ImageAutomation
		return ia != nil && strings.HasSuffix(ia.LastPushedCommit, head.Hash.String()), fmt.Sprintf("%+v", ia)
	})
	if ia.AutomatedImages != 2 {
		t.Errorf("automatedImages = %d, want 2 (ignored objects do not count)", ia.AutomatedImages)
	}
	waitImage(t, ns, "synconly", host+"/team/synconly:1.0.1")
}

// gitSecret creates a git credentials Secret with a username and password.
func gitSecret(t *testing.T, ns, name, user, pass string) {
	t.Helper()
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		StringData: map[string]string{"username": user, "password": pass},
	}
	if err := k8s.Create(context.Background(), s); err != nil {
		t.Fatal(err)
	}
}
