package webhook

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestRegistryImages(t *testing.T) {
	tests := []struct {
		name, body, want, err string
	}{
		{name: "generic image with tag", body: `{"image":"ghcr.io/acme/web:1.2.3"}`, want: "ghcr.io/acme/web"},
		{name: "generic repository", body: `{"repository":"127.0.0.1:5000/team/app"}`, want: "127.0.0.1:5000/team/app"},
		{name: "digest", body: `{"image":"ghcr.io/acme/web@sha256:abc"}`, want: "ghcr.io/acme/web"},
		{name: "docker hub", body: `{"push_data":{"tag":"latest"},"repository":{"repo_name":"acme/web","namespace":"acme"}}`, want: "acme/web"},
		{name: "distribution", body: `{"events":[{"action":"push","target":{"repository":"team/app","tag":"1.0"},"request":{"host":"reg:5000"}},{"action":"pull","target":{"repository":"other"}},{"action":"push","target":{"repository":"team/app"},"request":{"host":"reg:5000"}}]}`, want: "reg:5000/team/app"},
		{name: "two kinds at once", body: `{"image":"a/b","repository":"c/d"}`, want: "a/b,c/d"},
		{name: "nothing named", body: `{"hello":"world"}`, err: "names no image"},
		{name: "not JSON", body: `image=a`, err: "not JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := RegistryImages([]byte(tt.body))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("got %v, %v; want error %q", got, err, tt.err)
				}
				return
			}
			if err != nil || strings.Join(got, ",") != tt.want {
				t.Fatalf("got %v, %v; want %s", got, err, tt.want)
			}
		})
	}
}

func TestRegistryReceiverToken(t *testing.T) {
	var rescanned []string
	rr := &RegistryReceiver{Token: []byte("s3cret"), Rescan: func(img string) (int, error) {
		rescanned = append(rescanned, img)
		return 1, nil
	}}
	mux := http.NewServeMux()
	rr.Register(mux)
	post := func(target, auth string) int {
		req := httptest.NewRequest(http.MethodPost, target, strings.NewReader(`{"image":"ghcr.io/acme/web:2"}`))
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, req)
		return w.Code
	}
	for _, c := range []struct {
		target, auth string
		want         int
	}{
		{RegistryPath, "", http.StatusUnauthorized},
		{RegistryPath, "Bearer wrong", http.StatusUnauthorized},
		{RegistryPath + "?token=wrong", "", http.StatusUnauthorized},
		{RegistryPath, "Bearer s3cret", http.StatusAccepted},
		{RegistryPath + "?token=s3cret", "", http.StatusAccepted},
	} {
		if got := post(c.target, c.auth); got != c.want {
			t.Errorf("POST %s (auth %q): %d, want %d", c.target, c.auth, got, c.want)
		}
	}
	if strings.Join(rescanned, ",") != "ghcr.io/acme/web,ghcr.io/acme/web" {
		t.Errorf("rescanned %v", rescanned)
	}
}
