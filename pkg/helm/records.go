package helm

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
)

// Bounds of the release records (Secrets) helmflux hands to Helm. Helm's
// storage driver decodes a record whole (base64, gunzip, JSON) without a
// limit, and anyone who may write Secrets in a release's namespace may
// write a record: a megabyte of gzip expands to a gigabyte.
const (
	// DefaultMaxRecordSize bounds the decoded (gunzipped) size of one
	// record. Helm's own records of large charts decode to a few MiB.
	DefaultMaxRecordSize = 32 << 20
	// DefaultMaxRecordsSize bounds the decoded size of all the records one
	// read returns (a release's history), and so what Helm holds at once.
	DefaultMaxRecordsSize = 128 << 20
	// recordsPage is how many records a list reads per request, so that a
	// release with thousands of records is refused before it is all read.
	recordsPage = 16
)

// ErrRecordTooLarge marks a release record whose decoded size is above
// the Runner's bound; errors that wrap it are *RecordTooLargeError and also
// match ErrRecordRefused.
var ErrRecordTooLarge = errors.New("release record too large")

// RecordTooLargeError names the record (Secret) that was refused and the bound
// it broke; it never quotes the record's content.
type RecordTooLargeError struct {
	Namespace, Secret string
	// Limit is the bound in bytes; Total tells the bound of all records of
	// one read from that of one record.
	Limit int64
	Total bool
}

func (e *RecordTooLargeError) Error() string {
	if e.Total {
		return fmt.Sprintf("release records of %s decode to more than %d bytes in all (the limit), at Secret %s; "+
			"refused without reading them whole: delete the records nobody wrote with Helm", e.Namespace, e.Limit, e.Secret)
	}
	return fmt.Sprintf("release record Secret %s/%s decodes to more than %d bytes (the limit); "+
		"refused without reading it whole: anyone who may write Secrets in %s may have written it, delete it if Helm did not",
		e.Namespace, e.Secret, e.Limit, e.Namespace)
}

// Is makes a RecordTooLargeError match ErrRecordTooLarge and ErrRecordRefused.
func (e *RecordTooLargeError) Is(target error) bool {
	return target == ErrRecordTooLarge || target == ErrRecordRefused
}

// WithRecordLimits bounds the decoded size of one release record (perRecord)
// and of all the records one storage read returns (total); 0 keeps a default.
func WithRecordLimits(perRecord, total int64) RunnerOption {
	return func(c *cluster) { c.maxRecord, c.maxRecords = perRecord, total }
}

// boundedSecrets is the Secrets client Helm's storage driver reads records
// through: every record it returns has been measured, streaming, against
// the bounds, so Helm never decodes one above them.
type boundedSecrets struct {
	corev1client.SecretInterface
	namespace          string
	maxRecord, maxList int64
}

func (c *cluster) boundedSecrets(s corev1client.SecretInterface, namespace string) boundedSecrets {
	b := boundedSecrets{SecretInterface: s, namespace: namespace, maxRecord: c.maxRecord, maxList: c.maxRecords}
	if b.maxRecord <= 0 {
		b.maxRecord = DefaultMaxRecordSize
	}
	if b.maxList <= 0 {
		b.maxList = DefaultMaxRecordsSize
	}
	return b
}

// Get reads one record and measures it.
func (b boundedSecrets) Get(ctx context.Context, name string, opts metav1.GetOptions) (*corev1.Secret, error) {
	s, err := b.SecretInterface.Get(ctx, name, opts)
	if err != nil {
		return s, err
	}
	if _, err := b.measure(s, b.maxRecord, false); err != nil {
		return nil, err
	}
	return s, nil
}

// List reads records a page at a time, measuring each, and stops at the
// first one above the bounds.
func (b boundedSecrets) List(ctx context.Context, opts metav1.ListOptions) (*corev1.SecretList, error) {
	out := &corev1.SecretList{}
	var total int64
	opts.Limit = recordsPage
	for {
		page, err := b.SecretInterface.List(ctx, opts)
		if err != nil {
			return nil, err
		}
		for i := range page.Items {
			n, err := b.measure(&page.Items[i], min(b.maxRecord, b.maxList-total), b.maxList-total < b.maxRecord)
			if err != nil {
				return nil, err
			}
			total += n
		}
		out.Items = append(out.Items, page.Items...)
		out.ResourceVersion = page.ResourceVersion
		if page.Continue == "" {
			return out, nil
		}
		opts.Continue = page.Continue
	}
}

// measure returns the decoded size of the record in s (as Helm's driver
// decodes it: base64, then gunzip when it starts with gzip's magic), or a
// RecordTooLargeError when it is above limit. It reads the record as a
// stream and keeps none of it.
func (b boundedSecrets) measure(s *corev1.Secret, limit int64, total bool) (int64, error) {
	tooLarge := &RecordTooLargeError{Namespace: b.namespace, Secret: s.Name, Limit: b.maxRecord, Total: total}
	if total {
		tooLarge.Limit = b.maxList
	}
	data := s.Data["release"]
	if int64(len(data)) > limit {
		return 0, tooLarge
	}
	raw := base64.NewDecoder(base64.StdEncoding, bytes.NewReader(data))
	var magic [3]byte
	n, err := io.ReadFull(raw, magic[:])
	if err != nil || !bytes.Equal(magic[:], []byte{0x1f, 0x8b, 0x08}) {
		return int64(len(data)), nil // not gzip: Helm decodes it as it is, no larger than it is
	}
	gz, err := gzip.NewReader(io.MultiReader(bytes.NewReader(magic[:n]), raw))
	if err != nil {
		return int64(len(data)), nil // Helm refuses it as it would
	}
	size, err := io.CopyN(io.Discard, gz, limit+1)
	if size > limit {
		return 0, tooLarge
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return int64(len(data)), nil // a broken stream: Helm refuses it with its own error
	}
	return size, nil
}
