package fluxapi

import (
	"net/http"

	"github.com/fluxcd/pkg/apis/meta"

	helmfluxv1alpha1 "github.com/helmflux/helmflux/api/helmflux/v1alpha1"
)

// why answers GET /v12/why?workload=<id>.
func (s *Server) why(w http.ResponseWriter, r *http.Request) error {
	v := r.URL.Query().Get("workload")
	if v == "" {
		return badRequest("the workload query parameter is required")
	}
	id, err := ParseID(v)
	if err != nil {
		return badRequest("%v", err)
	}
	ws, err := s.Cluster.workloads(r.Context(), filter{ids: []ID{id}})
	if err != nil {
		return serverError(err)
	}
	if len(ws) == 0 {
		return missing("workload %s is not among the workloads of any GitSync", id)
	}
	wl := ws[0]
	out := WorkloadImages{ID: wl.id.String(), GitSync: wl.gitSync.Namespace + "/" + wl.gitSync.Name,
		Containers: []helmfluxv1alpha1.ContainerImage{}, Holds: []helmfluxv1alpha1.ImageHold{}}
	if st := wl.gitSync.Status.ImageAutomation; st != nil {
		for _, c := range st.Containers {
			if c.Workload == out.ID {
				out.Containers = append(out.Containers, c)
			}
		}
		for _, h := range st.Holds {
			if h.Workload == out.ID {
				out.Holds = append(out.Holds, h)
			}
		}
		if st.LastRunTime != nil {
			out.LastRun = st.LastRunTime.UTC().Format("2006-01-02T15:04:05Z")
		}
		for _, c := range st.Conditions {
			if c.Type == meta.ReadyCondition {
				out.Ready = string(c.Status) + " " + c.Reason + ": " + c.Message
			}
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// holds answers GET /v12/holds?namespace=: the holds in force in every
// GitSync's status, in a namespace of workloads ("" for all).
func (s *Server) holds(w http.ResponseWriter, r *http.Request) error {
	ns := r.URL.Query().Get("namespace")
	list, err := s.Writer.gitSyncs(r.Context())
	if err != nil {
		return serverError(err)
	}
	out := []Hold{}
	for _, gs := range list {
		st := gs.Status.ImageAutomation
		if st == nil {
			continue
		}
		for _, h := range st.Holds {
			id, err := ParseID(h.Workload)
			if err != nil || (ns != "" && id.Namespace != ns) {
				continue
			}
			out = append(out, Hold{GitSync: gs.Namespace + "/" + gs.Name, ImageHold: h})
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
