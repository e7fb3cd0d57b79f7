package notify

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

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	helmfluxv1alpha1 "github.com/helmflux/helmflux/api/helmflux/v1alpha1"
	"github.com/helmflux/helmflux/pkg/git"
)

// Message is the generic payload: the Event and the Alert's summary.
type Message struct {
	Event
	Summary string `json:"summary,omitempty"`
}

// SlackMessage is the Slack incoming-webhook payload.
type SlackMessage struct {
	Text        string            `json:"text"`
	Attachments []SlackAttachment `json:"attachments"`
}

// SlackAttachment is one attachment of a SlackMessage.
type SlackAttachment struct {
	Color    string       `json:"color"`
	Title    string       `json:"title"`
	Text     string       `json:"text"`
	Fields   []SlackField `json:"fields,omitempty"`
	Footer   string       `json:"footer,omitempty"`
	Ts       int64        `json:"ts"`
	Fallback string       `json:"fallback"`
}

// SlackField is one short field of a SlackAttachment.
type SlackField struct {
	Title string `json:"title"`
	Value string `json:"value"`
	Short bool   `json:"short"`
}

// payload is the body an Alert of type typ sends for ev.
func payload(typ helmfluxv1alpha1.AlertType, summary string, ev Event) ([]byte, error) {
	if typ != helmfluxv1alpha1.AlertSlack {
		return json.Marshal(Message{Event: ev, Summary: summary})
	}
	title := fmt.Sprintf("%s %s/%s: %s", ev.Kind, ev.Namespace, ev.Name, ev.Reason)
	text := title
	if summary != "" {
		text = summary + ": " + title
	}
	color := "good"
	if ev.Severity == SeverityError {
		color = "danger"
	}
	fields := []SlackField{{Title: "severity", Value: ev.Severity, Short: true}}
	if ev.Revision != "" {
		fields = append(fields, SlackField{Title: "revision", Value: ev.Revision, Short: true})
	}
	return json.Marshal(SlackMessage{Text: text, Attachments: []SlackAttachment{{
		Color: color, Title: title, Text: ev.Message, Fields: fields, Footer: "helmflux",
		Ts: ev.Timestamp.Unix(), Fallback: title + ": " + ev.Message,
	}}})
}

// permanentError is a failure that no retry helps (a 4xx answer but 429).
type permanentError struct{ msg string }

func (e *permanentError) Error() string { return e.msg }

// send posts ev to address once, within the request timeout. Its errors
// never name the address (a Slack URL is its own credential): a status
// code, a timeout, or a connection failure.
func (n *Notifier) send(ctx context.Context, a *helmfluxv1alpha1.Alert, address string, ev Event) error {
	body, err := payload(a.GetType(), a.Spec.Summary, ev)
	if err != nil {
		return &permanentError{msg: fmt.Sprintf("encode the message: %v", err)}
	}
	ctx, cancel := context.WithTimeout(ctx, n.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, address, bytes.NewReader(body))
	if err != nil {
		return &permanentError{msg: "the address is not a valid URL"}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "helmflux-notifier")
	resp, err := n.opts.HTTPClient.Do(req)
	if err != nil {
		return requestError(ctx, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return fmt.Errorf("the receiver answered %d", resp.StatusCode)
	default:
		return &permanentError{msg: fmt.Sprintf("the receiver answered %d", resp.StatusCode)}
	}
}

// requestError says why a request got no answer, without the URL that
// net/http's errors quote.
func requestError(ctx context.Context, err error) error {
	var netErr net.Error
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded) || (errors.As(err, &netErr) && netErr.Timeout()):
		return errors.New("no answer within the request timeout")
	default:
		return errors.New("could not connect to the receiver")
	}
}

// giveUp is the Delivered condition's message after the last attempt.
func giveUp(j job, err error) error {
	return fmt.Errorf("gave up on the %s message of %s %s after %d attempt(s): %w",
		j.ev.Reason, j.ev.Kind, j.ev.Name, j.attempt, err)
}

// addressError is why an Alert cannot send; reason is its Ready reason.
type addressError struct{ reason, msg string }

func (e *addressError) Error() string { return e.msg }

// resolveAddress reads the Alert's receiver URL from its Secret and
// checks it: http(s), a host, and no loopback host unless allowLocal.
// Errors name the Secret, never the URL.
func resolveAddress(ctx context.Context, secrets client.Reader, a *helmfluxv1alpha1.Alert, allowLocal bool) (string, error) {
	name := a.Spec.SecretRef.Name
	sec := &corev1.Secret{}
	if err := secrets.Get(ctx, client.ObjectKey{Namespace: a.Namespace, Name: name}, sec); err != nil {
		if client.IgnoreNotFound(err) == nil {
			return "", &addressError{helmfluxv1alpha1.SecretNotFoundReason, fmt.Sprintf("Secret %s not found", name)}
		}
		return "", fmt.Errorf("read Secret %s: %w", name, err)
	}
	raw := strings.TrimSpace(string(sec.Data[helmfluxv1alpha1.AddressKey]))
	if raw == "" {
		return "", &addressError{helmfluxv1alpha1.SecretNotFoundReason,
			fmt.Sprintf("Secret %s has no key %q", name, helmfluxv1alpha1.AddressKey)}
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", &addressError{helmfluxv1alpha1.InvalidAddressReason,
			fmt.Sprintf("the %s of Secret %s is not an http(s) URL", helmfluxv1alpha1.AddressKey, name)}
	}
	if !allowLocal && git.IsLoopbackHost(u.Host) {
		return "", &addressError{helmfluxv1alpha1.InvalidAddressReason,
			fmt.Sprintf("the %s of Secret %s names the operator's machine (a loopback host)", helmfluxv1alpha1.AddressKey, name)}
	}
	return raw, nil
}
