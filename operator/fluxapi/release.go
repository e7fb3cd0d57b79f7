package fluxapi

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/helmflux/helmflux/pkg/policy"
	"github.com/helmflux/helmflux/pkg/registry"
	"github.com/helmflux/helmflux/pkg/update"
)

// release is a parsed image or containers release.
type release struct {
	// all is true for ServiceSpecs ["<all>"]; ids otherwise.
	all bool
	ids []ID
	// excludes are left alone.
	excludes []ID
	// image is the image to release ("" with latest); latest releases
	// every container to the best tag its policy allows.
	image  string
	latest bool
	// containers are the exact updates of a containers release, by
	// workload ID.
	containers map[string][]ContainerUpdate
	plan       bool
	force      bool
}

// parseRelease checks an image release spec.
func parseRelease(s ImageReleaseSpec) (release, error) {
	rel := release{plan: s.Kind == ReleaseKindPlan, force: s.Force}
	if s.Kind != ReleaseKindPlan && s.Kind != ReleaseKindExecute {
		return rel, badRequest("unknown release kind %q (want plan or execute)", s.Kind)
	}
	if len(s.ServiceSpecs) == 0 {
		return rel, badRequest("name the workloads to release (--workload or --all)")
	}
	for _, spec := range s.ServiceSpecs {
		if spec == AllWorkloads {
			rel.all = true
			continue
		}
		id, err := ParseID(spec)
		if err != nil {
			return rel, badRequest("%v", err)
		}
		rel.ids = append(rel.ids, id)
	}
	for _, ex := range s.Excludes {
		id, err := ParseID(ex)
		if err != nil {
			return rel, badRequest("exclude: %v", err)
		}
		rel.excludes = append(rel.excludes, id)
	}
	switch s.ImageSpec {
	case AllLatestImages:
		rel.latest = true
	case "":
		return rel, badRequest("name the image to release (--update-image) or --update-all-images")
	default:
		repo, tag, ok := update.SplitRef(s.ImageSpec)
		if !ok || tag == "" {
			return rel, badRequest("invalid image %q: want a reference with a tag, such as ghcr.io/org/app:1.2.3", s.ImageSpec)
		}
		if _, err := registry.Normalize(repo); err != nil {
			return rel, badRequest("invalid image %q: %v", s.ImageSpec, err)
		}
		rel.image = s.ImageSpec
	}
	return rel, nil
}

// parseContainers checks a containers release (release --interactive).
func parseContainers(s ContainersReleaseSpec) (release, error) {
	rel := release{plan: s.Kind == ReleaseKindPlan, force: s.Force, containers: map[string][]ContainerUpdate{}}
	if s.Kind != ReleaseKindPlan && s.Kind != ReleaseKindExecute {
		return rel, badRequest("unknown release kind %q (want plan or execute)", s.Kind)
	}
	if len(s.ContainerSpecs) == 0 {
		return rel, badRequest("the release names no container")
	}
	for k, updates := range s.ContainerSpecs {
		id, err := ParseID(k)
		if err != nil {
			return rel, badRequest("%v", err)
		}
		for _, u := range updates {
			if u.Container == "" {
				return rel, badRequest("%s: a container update names no container", k)
			}
			if _, tag, ok := update.SplitRef(u.Target); !ok || tag == "" {
				return rel, badRequest("%s (%s): invalid target image %q", k, u.Container, u.Target)
			}
		}
		rel.ids = append(rel.ids, id)
		rel.containers[id.String()] = updates
	}
	sort.Slice(rel.ids, func(i, j int) bool { return rel.ids[i].String() < rel.ids[j].String() })
	return rel, nil
}

// excluded reports whether id is among the release's excludes.
func (rel release) excluded(id ID) bool {
	for _, ex := range rel.excludes {
		if ex.matches(id) {
			return true
		}
	}
	return false
}

// planned is what a release decided for one workload.
type planned struct {
	result  WorkloadResult
	changes []update.Change
	file    string
}

// planWorkload decides one workload's release from its images in git. img
// are the images update.Find found for that workload.
func (rel release) planWorkload(ctx context.Context, reg *registry.Client, id ID, images []update.Image) planned {
	if len(images) == 0 {
		return planned{result: WorkloadResult{Status: ResultSkipped, Error: "no image references found in git"}}
	}
	pol := policy.FromAnnotations(images[0].Annotations)
	switch {
	case pol.Ignored:
		return planned{result: WorkloadResult{Status: ResultIgnored, Error: "ignore policy"}}
	case pol.Locked && !rel.force:
		msg := "locked"
		if pol.LockedMsg != "" {
			msg += ": " + pol.LockedMsg
		}
		return planned{result: WorkloadResult{Status: ResultSkipped, Error: msg}}
	}
	var p planned
	var errs []string
	for _, img := range images {
		target, why, err := rel.target(ctx, reg, id, img, pol)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", img.Container, err))
			continue
		}
		if target == "" || target == img.Tag {
			if why != "" {
				errs = append(errs, why)
			}
			continue
		}
		p.changes = append(p.changes, update.Change{Image: img, NewTag: target})
		p.result.PerContainer = append(p.result.PerContainer, ContainerUpdate{
			Container: img.Container, Current: ref(img.Repository, img.Tag), Target: ref(img.Repository, target),
		})
		p.file = img.File
	}
	switch {
	case len(p.changes) > 0:
		p.result.Status = ResultSuccess
	case len(errs) > 0 && rel.containers != nil:
		p.result = WorkloadResult{Status: ResultFailed, Error: strings.Join(errs, "; ")}
	default:
		p.result = WorkloadResult{Status: ResultSkipped, Error: "image(s) up to date"}
		if len(errs) > 0 {
			p.result.Error = strings.Join(errs, "; ")
		}
	}
	return p
}

// target returns the tag one container is released to, "" to leave it.
func (rel release) target(ctx context.Context, reg *registry.Client, id ID, img update.Image, pol policy.Policy) (string, string, error) {
	switch {
	case rel.containers != nil:
		for _, u := range rel.containers[id.String()] {
			if u.Container != img.Container {
				continue
			}
			if cur := ref(img.Repository, img.Tag); u.Current != "" && u.Current != cur && !rel.force {
				return "", "", fmt.Errorf("runs %s, not %s as the release expected", cur, u.Current)
			}
			_, tag, _ := update.SplitRef(u.Target)
			return tag, "", nil
		}
		return "", "", nil
	case rel.latest:
		cp, err := pol.Container(img.Container)
		if err != nil {
			return "", "", err
		}
		res, err := reg.Scan(ctx, img.Repository, scanOptions(cp))
		if err != nil {
			return "", "", err
		}
		scan := policy.Scan{Complete: res.Complete}
		for _, t := range res.Tags {
			scan.Tags = append(scan.Tags, policy.Candidate{Tag: t.Name, Created: t.Created})
		}
		d, err := policy.Decide(cp, img.Tag, scan)
		if errors.Is(err, policy.ErrNoCandidates) {
			return "", err.Error(), nil
		}
		if err != nil {
			return "", "", err
		}
		return d.Tag, "", nil
	}
	repo, tag, _ := update.SplitRef(rel.image)
	if !sameRepository(repo, img.Repository) {
		return "", "", nil
	}
	return tag, "", nil
}

func scanOptions(cp policy.ContainerPolicy) registry.ScanOptions {
	opts := registry.ScanOptions{}
	if cp.NeedsCreated() {
		opts.Created = cp.Filter.Match
	}
	return opts
}

// sameRepository compares two repositories as the registry client names
// them, so that "nginx" and "docker.io/library/nginx" are one.
func sameRepository(a, b string) bool {
	na, errA := registry.Normalize(a)
	nb, errB := registry.Normalize(b)
	if errA != nil || errB != nil {
		return a == b
	}
	return na == nb
}

func ref(repo, tag string) string {
	if tag == "" {
		return repo
	}
	return repo + ":" + tag
}
