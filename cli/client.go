package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
)

// app is one run of the CLI: its streams, flags, output style and, once a
// command needs it, its connection to the operator.
type app struct {
	out, errOut io.Writer
	opts        options
	style       style

	mu   sync.Mutex
	conn *connection
	http *http.Client
}

func newApp(out, errOut io.Writer) *app {
	return &app{out: out, errOut: errOut, style: styleFor(out), http: &http.Client{}}
}

// close ends the port-forward, if one was opened.
func (a *app) close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.conn != nil {
		a.conn.close()
		a.conn = nil
	}
}

// base connects on first use and returns the API's base URL.
func (a *app) base(ctx context.Context) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.conn == nil {
		c, err := a.opts.connect(ctx, a.errOut)
		if err != nil {
			return "", err
		}
		a.conn = c
	}
	return a.conn.base, nil
}

// apiError is an error answer of the API: fluxd's {"type","help","error"}.
type apiError struct {
	Status int    `json:"-"`
	Type   string `json:"type"`
	Help   string `json:"help"`
	Err    string `json:"error"`
}

func (e *apiError) Error() string {
	msg := strings.TrimSpace(e.Help)
	if msg == "" {
		msg = e.Err
	}
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	return msg
}

// isMissing reports whether err is the API's "missing" answer.
func isMissing(err error) bool {
	var e *apiError
	return errors.As(err, &e) && (e.Type == "missing" || e.Status == http.StatusNotFound)
}

// get GETs path?query and decodes the JSON answer into out.
func (a *app) get(ctx context.Context, path string, query url.Values, out any) error {
	return a.do(ctx, http.MethodGet, path, query, nil, out)
}

// post POSTs body as JSON to path and decodes the JSON answer into out.
func (a *app) post(ctx context.Context, path string, body, out any) error {
	return a.do(ctx, http.MethodPost, path, nil, body, out)
}

func (a *app) do(ctx context.Context, method, path string, query url.Values, body, out any) error {
	base, err := a.base(ctx)
	if err != nil {
		return err
	}
	u := base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return withCode(exitUnreachable, err)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if a.opts.token != "" {
		req.Header.Set("Authorization", "Scope-Probe token="+a.opts.token)
	}
	resp, err := a.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return withCode(exitTimeout, fmt.Errorf("%s %s: %w", method, path, ctx.Err()))
		}
		var op *net.OpError
		if errors.As(err, &op) {
			return withCode(exitUnreachable, fmt.Errorf("cannot reach the operator at %s: %w (is --url right, or the port-forward up?)", base, err))
		}
		return withCode(exitUnreachable, err)
	}
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return withCode(exitUnreachable, err)
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		return withCode(exitUnreachable, errors.New("the operator refused the token: set --token (or FLUX_SERVICE_TOKEN) to the token of its --api-token-file"))
	case resp.StatusCode == http.StatusNotFound && !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json"):
		return withCode(exitUnreachable, fmt.Errorf("%s%s answered 404: this is not the helmflux API (the base URL ends in %s)", base, path, apiPrefix))
	case resp.StatusCode >= 300:
		e := &apiError{Status: resp.StatusCode}
		if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") && json.Unmarshal(data, e) == nil && (e.Help != "" || e.Err != "") {
			return withCode(exitFailed, e)
		}
		return withCode(exitFailed, fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(data))))
	}
	if out == nil || len(data) == 0 {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: the answer does not parse: %w", method, path, err)
	}
	return nil
}
