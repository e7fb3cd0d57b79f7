package fluxapi

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"
)

// maxExport bounds the YAML /v6/export answers with.
const maxExport = 32 << 20

// export answers GET /v6/export: the objects of every GitSync's inventory
// as they are in the cluster, as multi-document YAML without status and
// server-set metadata. Secrets are left out: their data never leaves the
// cluster through this API.
func (s *Server) export(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	list, err := s.Writer.gitSyncs(ctx)
	if err != nil {
		return serverError(err)
	}
	var out bytes.Buffer
	seen := map[string]bool{}
	for i := range list {
		entries, err := s.Cluster.inventory(ctx, &list[i])
		if err != nil {
			return serverError(err)
		}
		for _, e := range entries {
			if (e.ID.Group == "" && e.ID.Kind == "Secret") || seen[e.ID.String()] {
				continue
			}
			seen[e.ID.String()] = true
			gv, err := schema.ParseGroupVersion(e.Version)
			if err != nil {
				return serverError(fmt.Errorf("inventory of GitSync %s/%s: %w", list[i].Namespace, list[i].Name, err))
			}
			obj := &unstructured.Unstructured{}
			obj.SetGroupVersionKind(schema.GroupVersionKind{Group: e.ID.Group, Version: gv.Version, Kind: e.ID.Kind})
			if err := s.Cluster.Reader.Get(ctx, client.ObjectKey{Namespace: e.ID.Namespace, Name: e.ID.Name}, obj); err != nil {
				if client.IgnoreNotFound(err) == nil {
					continue
				}
				return serverError(err)
			}
			clean(obj)
			b, err := yaml.Marshal(obj.Object)
			if err != nil {
				return serverError(err)
			}
			if out.Len()+len(b) > maxExport {
				return userError("the export is larger than %d bytes", maxExport)
			}
			out.WriteString("---\n")
			out.Write(b)
		}
	}
	if r.Method == http.MethodHead {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		return nil
	}
	writeJSON(w, http.StatusOK, out.Bytes())
	return nil
}

// clean drops what the cluster added to an object.
func clean(obj *unstructured.Unstructured) {
	delete(obj.Object, "status")
	for _, f := range []string{"uid", "resourceVersion", "generation", "creationTimestamp", "managedFields", "selfLink"} {
		unstructured.RemoveNestedField(obj.Object, "metadata", f)
	}
	ann := obj.GetAnnotations()
	delete(ann, "kubectl.kubernetes.io/last-applied-configuration")
	delete(ann, "deployment.kubernetes.io/revision")
	for k := range ann {
		if strings.HasPrefix(k, "helmflux.dev/") { // the GitSync's bookkeeping, not the user's
			delete(ann, k)
		}
	}
	if len(ann) == 0 {
		unstructured.RemoveNestedField(obj.Object, "metadata", "annotations")
	} else {
		obj.SetAnnotations(ann)
	}
}
