package fluxapi

import (
	"encoding/json"
	"net/http"
)

// notify answers POST /v11/notify, what fluxd's webhook relays send: a git
// push ({"Kind":"git","Source":{"URL","Branch"}}) syncs the GitSyncs of that
// repository, an image push ({"Kind":"image","Source":{"Name":{"Domain","Image"}}})
// rescans that image.
func (s *Server) notify(w http.ResponseWriter, r *http.Request) error {
	var n NotifyChange
	if err := json.NewDecoder(r.Body).Decode(&n); err != nil {
		return badRequest("the change does not parse: %v", err)
	}
	if n.Kind != "git" && n.Kind != "image" {
		return badRequest("unknown change kind %q (want git or image)", n.Kind)
	}
	if s.Notify != nil {
		if err := s.Notify(r.Context(), n); err != nil {
			return err
		}
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// GitSource is the source of a git change notification.
type GitSource struct {
	URL    string
	Branch string
}

// ImageSource is the source of an image change notification.
type ImageSource struct {
	Name struct {
		Domain string
		Image  string
	}
}

// Repository is the image a notification names, "<domain>/<image>".
func (s ImageSource) Repository() string {
	if s.Name.Domain == "" {
		return s.Name.Image
	}
	return s.Name.Domain + "/" + s.Name.Image
}
