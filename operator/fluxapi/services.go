package fluxapi

import (
	"net/http"
	"strings"

	"github.com/helmflux/helmflux/pkg/policy"
)

// parseIDs reads a comma-separated list of workload IDs.
func parseIDs(s string) ([]ID, error) {
	var out []ID
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		id, err := ParseID(part)
		if err != nil {
			return nil, badRequest("%v", err)
		}
		out = append(out, id)
	}
	return out, nil
}

// services answers GET /v6/services and /v11/services: the workloads of
// every GitSync, in a namespace ("" for all) or by ID.
func (s *Server) services(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	f := filter{namespace: q.Get("namespace")}
	if v := q.Get("services"); v != "" {
		if f.namespace != "" {
			return userError("cannot filter by both namespace (%s) and services", f.namespace)
		}
		ids, err := parseIDs(v)
		if err != nil {
			return err
		}
		f.ids = ids
	}
	ws, err := s.Cluster.workloads(r.Context(), f)
	if err != nil {
		return serverError(err)
	}
	out := make([]ControllerStatus, 0, len(ws))
	for _, wl := range ws {
		out = append(out, controllerStatus(wl))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// controllerStatus is a workload as fluxd reported it.
func controllerStatus(wl workload) ControllerStatus {
	pol := policy.FromAnnotations(wl.annotations)
	cs := ControllerStatus{
		ID: wl.id.String(), Status: wl.status, Rollout: wl.rollout, SyncError: wl.syncError,
		Antecedent: wl.antecedent, Labels: wl.labels, Automated: pol.Automated, Locked: pol.Locked,
		Ignore: pol.Ignored, Policies: policies(wl.annotations),
	}
	if cs.Labels == nil {
		cs.Labels = map[string]string{}
	}
	if wl.gitSync != nil && wl.gitSync.Spec.ReadOnly {
		cs.ReadOnly = ReadOnlyMode
	}
	for _, c := range wl.containers {
		cs.Containers = append(cs.Containers, Container{Name: c.name, Current: &ImageInfo{ID: c.image}})
	}
	return cs
}

// policies maps a workload's Flux v1 annotations to fluxd's policy names:
// "automated", "locked", "locked_msg", "locked_user", "ignore", "tag_all"
// and "tag.<container>" (filter.fluxcd.io/<container> included).
func policies(ann map[string]string) map[string]string {
	out := map[string]string{}
	legacy := map[string]string{}
	for k, v := range ann {
		switch {
		case strings.HasPrefix(k, policy.Prefix):
			out[strings.TrimPrefix(k, policy.Prefix)] = v
		case strings.HasPrefix(k, policy.LegacyPrefix):
			legacy[strings.TrimPrefix(k, policy.LegacyPrefix)] = v
		}
	}
	for k, v := range ann {
		if name, ok := strings.CutPrefix(k, policy.FilterPrefix); ok && name != "" {
			out[policy.TagKeyPrefix+name] = v // the filter annotation wins
		}
	}
	for k, v := range legacy {
		if _, ok := out[k]; !ok {
			out[k] = v
		}
	}
	for k := range out {
		if !isPolicyName(k) {
			delete(out, k)
		}
	}
	return out
}

func isPolicyName(k string) bool {
	switch k {
	case policy.AutomatedKey, policy.LockedKey, policy.LockedMsgKey, policy.LockedUserKey, policy.IgnoreKey, "tag_all":
		return true
	}
	return strings.HasPrefix(k, policy.TagKeyPrefix) && len(k) > len(policy.TagKeyPrefix)
}
