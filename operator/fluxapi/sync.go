package fluxapi

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"k8s.io/apimachinery/pkg/types"

	helmfluxv1alpha1 "github.com/helmflux/helmflux/api/helmflux/v1alpha1"
	"github.com/helmflux/helmflux/operator/gitcreds"
	"github.com/helmflux/helmflux/pkg/git"
)

// maxSyncWalk bounds the commits /v6/sync looks through for a ref.
const maxSyncWalk = 10_000

// gitSyncs lists the GitSyncs by namespace and name.
func (wr *Writer) gitSyncs(ctx context.Context) ([]helmfluxv1alpha1.GitSync, error) {
	return listGitSyncs(ctx, wr.Client)
}

// sync fetches every GitSync's repository now and wakes each GitSync; the
// result's revision is the first GitSync's head.
func (wr *Writer) sync(ctx context.Context, step func(string, ...any)) (JobResult, error) {
	list, err := wr.gitSyncs(ctx)
	if err != nil {
		return JobResult{}, err
	}
	if len(list) == 0 {
		return JobResult{}, fmt.Errorf("no GitSync exists: there is no repository to sync")
	}
	var res JobResult
	for i := range list {
		gs := &list[i]
		if gs.Spec.Suspend {
			step("GitSync %s/%s is suspended; not synced.", gs.Namespace, gs.Name)
			continue
		}
		step("Fetch %s for GitSync %s/%s.", gs.Spec.URL, gs.Namespace, gs.Name)
		auth, err := gitcreds.Credentials(ctx, wr.Client, gs, wr.Identity)
		if err != nil {
			return res, fmt.Errorf("GitSync %s/%s: %w", gs.Namespace, gs.Name, err)
		}
		rev, err := wr.Git.Fetch(ctx, gs.Spec.URL, refOf(gs), auth)
		if err != nil {
			return res, fmt.Errorf("GitSync %s/%s: %w", gs.Namespace, gs.Name, err)
		}
		step("Fetched %s.", rev)
		wr.remember(gs.Spec.URL, rev.Hash)
		if res.Revision == "" {
			res.Revision = rev.Hash
		}
		if wr.Wake != nil {
			wr.Wake(ctx, types.NamespacedName{Namespace: gs.Namespace, Name: gs.Name})
		}
	}
	return res, nil
}

func refOf(gs *helmfluxv1alpha1.GitSync) git.Ref {
	if r := gs.Spec.Ref; r != nil {
		return git.Ref{Branch: r.Branch, Tag: r.Tag, SemVer: r.SemVer}
	}
	return git.Ref{}
}

// syncStatus answers GET /v6/sync?ref=: [] once some GitSync applied a
// revision that is ref or descends from it, [<ref>] while one fetched it
// — or a job pushed or fetched it for one — and has not applied it yet.
// ref may be a full or an abbreviated hash.
func (s *Server) syncStatus(w http.ResponseWriter, r *http.Request) error {
	ref := strings.ToLower(r.URL.Query().Get("ref"))
	if ref == "" {
		return missing("the ref query parameter is required")
	}
	if len(ref) < 4 || len(ref) > 40 || strings.Trim(ref, "0123456789abcdef") != "" {
		return badRequest("ref %q is not a commit hash", ref)
	}
	list, err := s.Writer.gitSyncs(r.Context())
	if err != nil {
		return serverError(err)
	}
	var pending string
	for i := range list {
		gs := &list[i]
		if _, ok := s.Writer.contains(r.Context(), gs.Spec.URL, gs.Status.LastAppliedRevision, ref); ok {
			writeJSON(w, http.StatusOK, []string{})
			return nil
		}
		if full, ok := s.Writer.contains(r.Context(), gs.Spec.URL, gs.Status.LastFetchedRevision, ref); ok && pending == "" {
			pending = full
		}
	}
	// A commit a job just pushed or fetched, before the GitSync's status
	// says it fetched it: fluxctl polls at once, and stops at an error.
	for i := range list {
		if pending != "" {
			break
		}
		url := list[i].Spec.URL
		if h := s.Writer.head(url); h != "" {
			if full, ok := s.Writer.contains(r.Context(), url, "sha1:"+h, ref); ok {
				pending = full
			}
		}
	}
	if pending == "" {
		return missing("no GitSync has fetched a commit %s; run fluxctl sync, or check the revision", ref)
	}
	writeJSON(w, http.StatusOK, []string{pending})
	return nil
}

// contains reports whether the history at revision (as status writes it,
// "<ref>@sha1:<hash>") holds a commit whose hash starts with prefix, and
// returns that commit's full hash.
func (wr *Writer) contains(ctx context.Context, url, revision, prefix string) (string, bool) {
	_, hash, ok := strings.Cut(revision, "sha1:")
	if !ok || hash == "" {
		return "", false
	}
	if strings.HasPrefix(hash, prefix) {
		return hash, true
	}
	res, err := wr.Git.Log(ctx, url, git.Revision{Hash: hash}, git.LogOptions{MaxCommits: maxSyncWalk})
	if err != nil {
		return "", false
	}
	for _, e := range res.Entries {
		if strings.HasPrefix(e.Hash, prefix) {
			return e.Hash, true
		}
	}
	return "", false
}
