package v1

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Values holds free-form Helm values as raw JSON. It is its own type, rather than
// apiextensions' JSON, so that this package depends on apimachinery alone.
// +kubebuilder:validation:Type=object
// +kubebuilder:pruning:PreserveUnknownFields
type Values struct {
	// Raw is the JSON encoding of the values object.
	Raw []byte `json:"-"`
}

// MarshalJSON writes the raw values; empty values are an empty object.
func (v Values) MarshalJSON() ([]byte, error) {
	if len(v.Raw) == 0 {
		return []byte("{}"), nil
	}
	return v.Raw, nil
}

// UnmarshalJSON keeps a copy of the raw values; null is the same as no values.
func (v *Values) UnmarshalJSON(data []byte) error {
	if bytes.Equal(bytes.TrimSpace(data), []byte("null")) {
		v.Raw = nil
		return nil
	}
	v.Raw = append(v.Raw[:0], data...)
	return nil
}

// Map decodes the values into the map form Helm takes. Empty values give an
// empty map.
func (v *Values) Map() (map[string]any, error) {
	out := map[string]any{}
	if v == nil || len(v.Raw) == 0 {
		return out, nil
	}
	if err := json.Unmarshal(v.Raw, &out); err != nil {
		return nil, fmt.Errorf("decode values: %w", err)
	}
	if out == nil { // the JSON was null
		out = map[string]any{}
	}
	return out, nil
}
