package outcome

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Masked replaces a secret value in text.
const Masked = "[redacted]"

// MinMasked is the shortest value a Mask masks: a shorter one (a port, a
// "yes") would turn every message into a row of masks.
const MinMasked = 4

// Mask holds, in memory and for one pass only, the values that came from
// Secrets, and masks them in the text of errors, conditions and Events.
// Helm's errors quote values (a template's fail, a YAML line, a refusal of
// the API server naming a field's value), so text is masked where it
// leaves the pass. The zero Mask masks nothing.
type Mask struct {
	values   map[string]bool
	replacer *strings.Replacer
}

// Add masks every scalar leaf of v (a values tree: maps, lists, strings
// and numbers, these in their printed forms) of at least MinMasked
// characters. Booleans are not masked: true and false hide nothing, and
// masking them would blank those words in every message. A multi-line string is masked line by line too, for
// errors that quote one line of it.
func (m *Mask) Add(v any) {
	switch v := v.(type) {
	case map[string]any:
		for _, e := range v {
			m.Add(e)
		}
	case []any:
		for _, e := range v {
			m.Add(e)
		}
	case string:
		m.addString(v)
		if strings.Contains(v, "\n") {
			for _, l := range strings.Split(v, "\n") {
				m.addString(strings.TrimSpace(l))
			}
		}
	case float64:
		m.addString(strconv.FormatFloat(v, 'f', -1, 64))
		m.addString(fmt.Sprint(v))
	case nil, bool:
	default:
		m.addString(fmt.Sprint(v))
	}
}

func (m *Mask) addString(s string) {
	if len(s) < MinMasked {
		return
	}
	if m.values == nil {
		m.values = map[string]bool{}
	}
	m.values[s] = true
	if q := strconv.Quote(s); q[1:len(q)-1] != s {
		m.values[q[1:len(q)-1]] = true // as %q and JSON quote it
	}
	m.replacer = nil
}

// Empty tells whether the Mask masks nothing.
func (m *Mask) Empty() bool { return m == nil || len(m.values) == 0 }

// String returns s with every masked value replaced by Masked.
func (m *Mask) String(s string) string {
	if m.Empty() {
		return s
	}
	if m.replacer == nil {
		vals := make([]string, 0, len(m.values))
		for v := range m.values {
			vals = append(vals, v)
		}
		// Longest first, so a value inside a longer one leaves no tail.
		sort.Slice(vals, func(i, j int) bool {
			if len(vals[i]) != len(vals[j]) {
				return len(vals[i]) > len(vals[j])
			}
			return vals[i] < vals[j]
		})
		pairs := make([]string, 0, 2*len(vals))
		for _, v := range vals {
			pairs = append(pairs, v, Masked)
		}
		m.replacer = strings.NewReplacer(pairs...)
	}
	return m.replacer.Replace(s)
}

// Error returns err with its text masked, keeping its class, reason and
// delay (what Result and Of read); nil stays nil, and an error with nothing
// to mask is returned as it is.
func (m *Mask) Error(err error) error {
	if err == nil || m.Empty() {
		return err
	}
	text := err.Error()
	masked := m.String(text)
	if masked == text {
		return err
	}
	var e *Error
	if errors.As(err, &e) {
		return &Error{Reason: e.Reason, Class: e.Class, After: e.After, Err: errors.New(masked)}
	}
	return errors.New(masked)
}

// Conditions masks the messages of conditions in place.
func (m *Mask) Conditions(list []metav1.Condition) {
	if m.Empty() {
		return
	}
	for i := range list {
		list[i].Message = m.String(list[i].Message)
	}
}
