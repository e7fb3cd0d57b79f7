package fluxapi

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"

	"github.com/helmflux/helmflux/pkg/policy"
	"github.com/helmflux/helmflux/pkg/registry"
	"github.com/helmflux/helmflux/pkg/update"
)

// maxAvailable bounds the tags listed per container.
const maxAvailable = 1000

// Images answers image questions from the registry client's cache. A
// repository the cache does not know yet (automation scans automated
// images only) is queued for one background scan, so the next request
// finds it; a request never waits for a registry.
type Images struct {
	Registry *registry.Client
	// Credentials are the operator-wide registry logins used by
	// background scans.
	Credentials registry.Credentials
	Log         logr.Logger

	once    sync.Once
	queue   chan string
	mu      sync.Mutex
	pending map[string]bool
}

// warm queues a background scan of repo, once while it is queued.
func (im *Images) warm(repo string) {
	im.once.Do(func() {
		im.queue = make(chan string, 256)
		im.pending = map[string]bool{}
		go im.scanLoop()
	})
	im.mu.Lock()
	defer im.mu.Unlock()
	if im.pending[repo] {
		return
	}
	select {
	case im.queue <- repo:
		im.pending[repo] = true
	default: // a full queue: a later request asks again
	}
}

func (im *Images) scanLoop() {
	for repo := range im.queue {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		_, err := im.Registry.Scan(ctx, repo, registry.ScanOptions{Credentials: im.Credentials})
		cancel()
		if err != nil {
			im.Log.Info("Background scan for the fluxd API failed", "repository", repo, "error", err.Error())
		}
		im.mu.Lock()
		delete(im.pending, repo)
		im.mu.Unlock()
	}
}

// images answers GET /v6/images and /v10/images.
func (s *Server) images(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	f := filter{namespace: q.Get("namespace")}
	if svc := q.Get("service"); svc != "" && svc != AllWorkloads {
		if f.namespace != "" {
			return userError("cannot filter by both namespace (%s) and service", f.namespace)
		}
		id, err := ParseID(svc)
		if err != nil {
			return badRequest("%v", err)
		}
		f.ids = []ID{id}
	}
	var fields []string
	if v := q.Get("containerFields"); v != "" {
		fields = strings.Split(v, ",")
	}
	ws, err := s.Cluster.workloads(r.Context(), f)
	if err != nil {
		return serverError(err)
	}
	if len(f.ids) == 1 && len(ws) == 0 {
		return missing("workload %s is not among the workloads of any GitSync", f.ids[0])
	}
	out := make([]ImageStatus, 0, len(ws))
	for _, wl := range ws {
		st := ImageStatus{ID: wl.id.String()}
		pol := policy.FromAnnotations(wl.annotations)
		for _, c := range wl.containers {
			st.Containers = append(st.Containers, onlyFields(s.Images.container(c, pol), fields))
		}
		out = append(out, st)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// container is one container with the tags the cache knows of its
// repository, newest first.
func (im *Images) container(c workloadContainer, pol policy.Policy) Container {
	out := Container{Name: c.name, Current: &ImageInfo{ID: c.image}}
	repo, current, ok := update.SplitRef(c.image)
	if !ok {
		out.AvailableError = "the image reference is pinned by digest or not a tag reference"
		return out
	}
	res, cached := im.Registry.Cached(repo, im.Credentials)
	if !cached {
		if im.Registry.Allowed(repo) {
			im.warm(repo)
			out.AvailableError = "registry metadata for " + repo + " is not cached yet; it is being read, ask again shortly"
		} else {
			out.AvailableError = "the operator does not scan " + repo + " (--registry-include-image / --registry-exclude-image)"
		}
		return out
	}
	infos := make([]ImageInfo, 0, len(res.Tags))
	var currentInfo *ImageInfo
	fetched := res.ScannedAt
	for _, t := range res.Tags {
		info := ImageInfo{ID: repo + ":" + t.Name, Digest: t.Digest, LastFetched: &fetched}
		if !t.Created.IsZero() {
			created := t.Created
			info.CreatedAt = &created
		}
		infos = append(infos, info)
		if t.Name == current {
			currentInfo = &infos[len(infos)-1]
		}
	}
	if currentInfo != nil {
		cur := *currentInfo
		out.Current = &cur
	}
	slices.SortStableFunc(infos, newestFirst)
	out.AvailableImagesCount = len(infos)
	cp, err := pol.Container(c.name)
	var filtered int
	for _, info := range infos {
		_, tag, _ := strings.Cut(strings.TrimPrefix(info.ID, repo), ":")
		if err == nil && cp.Filter.Match(tag) {
			filtered++
			if out.Current != nil && newer(info, *out.Current) {
				out.NewFilteredImagesCount++
			}
		}
		if out.Current != nil && newer(info, *out.Current) {
			out.NewAvailableImagesCount++
		}
	}
	out.FilteredImagesCount = filtered
	if err == nil {
		scan := policy.Scan{Complete: true}
		for _, t := range res.Tags {
			scan.Tags = append(scan.Tags, policy.Candidate{Tag: t.Name, Created: t.Created})
		}
		if d, derr := policy.Decide(cp, current, scan); derr == nil && d.Best != "" {
			for i := range infos {
				if infos[i].ID == repo+":"+d.Best {
					best := infos[i]
					out.LatestFiltered = &best
				}
			}
		}
	}
	out.Available = infos[:min(len(infos), maxAvailable)]
	return out
}

// newestFirst orders by creation time, newest first; tags without a time
// come last, the highest tag name first.
func newestFirst(a, b ImageInfo) int {
	switch {
	case a.CreatedAt != nil && b.CreatedAt != nil && !a.CreatedAt.Equal(*b.CreatedAt):
		return b.CreatedAt.Compare(*a.CreatedAt)
	case a.CreatedAt != nil && b.CreatedAt == nil:
		return -1
	case a.CreatedAt == nil && b.CreatedAt != nil:
		return 1
	}
	return strings.Compare(b.ID, a.ID)
}

func newer(a, b ImageInfo) bool {
	return a.CreatedAt != nil && b.CreatedAt != nil && a.CreatedAt.After(*b.CreatedAt)
}

// onlyFields keeps the named Container fields, all when fields is empty.
func onlyFields(c Container, fields []string) Container {
	if len(fields) == 0 {
		return c
	}
	var out Container
	for _, f := range fields {
		switch f {
		case "Name":
			out.Name = c.Name
		case "Current":
			out.Current = c.Current
		case "LatestFiltered":
			out.LatestFiltered = c.LatestFiltered
		case "Available":
			out.Available = c.Available
		case "AvailableError":
			out.AvailableError = c.AvailableError
		case "AvailableImagesCount":
			out.AvailableImagesCount = c.AvailableImagesCount
		case "NewAvailableImagesCount":
			out.NewAvailableImagesCount = c.NewAvailableImagesCount
		case "FilteredImagesCount":
			out.FilteredImagesCount = c.FilteredImagesCount
		case "NewFilteredImagesCount":
			out.NewFilteredImagesCount = c.NewFilteredImagesCount
		}
	}
	return out
}
