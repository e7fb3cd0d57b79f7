package helm

import (
	"context"
	"io"
	"net/http"
	"sync"

	"k8s.io/client-go/rest"
)

// withContext returns a copy of cfg whose every request also ends when ctx
// does. Helm's kube client takes no context for most of what it does (its
// waits and hook watches make their own from a timeout); this is how an
// action's requests still end with the reconcile. A nil ctx returns cfg.
func withContext(cfg *rest.Config, ctx context.Context) *rest.Config {
	if ctx == nil {
		return cfg
	}
	out := rest.CopyConfig(cfg)
	out.Wrap(func(rt http.RoundTripper) http.RoundTripper { return ctxTransport{ctx: ctx, next: rt} })
	return out
}

// ctxTransport ties each request to ctx as well as to its own context.
// Written by hand: neither client-go nor the standard library joins two
// contexts for a request whose body outlives RoundTrip.
type ctxTransport struct {
	ctx  context.Context
	next http.RoundTripper
}

func (t ctxTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := t.ctx.Err(); err != nil {
		return nil, err
	}
	rctx, cancel := context.WithCancelCause(req.Context())
	stop := context.AfterFunc(t.ctx, func() { cancel(t.ctx.Err()) })
	done := func() { stop(); cancel(nil) }
	resp, err := t.next.RoundTrip(req.WithContext(rctx))
	if err != nil {
		done()
		return nil, err
	}
	resp.Body = &doneBody{ReadCloser: resp.Body, done: done}
	return resp, nil
}

// doneBody releases a request's context when its body is closed (a watch's
// body lives as long as the watch).
type doneBody struct {
	io.ReadCloser
	once sync.Once
	done func()
}

func (b *doneBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(b.done)
	return err
}

// cancellable runs f, an action Helm runs without a context, and returns
// its result, or ctx's error as soon as ctx is done. f then goes on in the
// background, as Helm's own install and upgrade do when their context ends,
// but its kube requests fail at once (see configuration); a wait or a hook
// watch of Helm's ends by its own timeout at the latest, and the action
// then records itself failed.
func cancellable[T any](ctx context.Context, f func() (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := f()
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		return r.v, r.err
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}
