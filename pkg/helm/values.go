package helm

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"

	"sigs.k8s.io/yaml"
)

// ErrInvalidValues marks values that are not a YAML map.
var ErrInvalidValues = errors.New("invalid values")

var yamlLine = regexp.MustCompile(`line \d+`)

// ParseValues parses one values document. Values may hold secrets, so the
// error says where the document is broken but never quotes it.
func ParseValues(b []byte) (map[string]any, error) {
	out := map[string]any{}
	if err := yaml.Unmarshal(b, &out); err != nil {
		where := ""
		if l := yamlLine.FindString(err.Error()); l != "" {
			where = " at " + l
		}
		return nil, fmt.Errorf("%w: not a YAML map%s", ErrInvalidValues, where)
	}
	if out == nil {
		out = map[string]any{}
	}
	return out, nil
}

// MergeValues merges layers in order into a new map, as the Helm Operator
// did: a map merges key by key into a map, any other value (lists included)
// replaces what was there. The layers are not modified.
func MergeValues(layers ...map[string]any) map[string]any {
	out := map[string]any{}
	for _, l := range layers {
		mergeInto(out, l)
	}
	return out
}

func mergeInto(dst, src map[string]any) {
	for k, v := range src {
		if sm, ok := v.(map[string]any); ok {
			if dm, ok := dst[k].(map[string]any); ok {
				mergeInto(dm, sm)
				continue
			}
			c := map[string]any{}
			mergeInto(c, sm)
			dst[k] = c
			continue
		}
		dst[k] = v
	}
}

// Checksum returns the sha256 of the values' canonical JSON (sorted keys),
// hex-encoded, so equal values give equal checksums whatever their source's
// formatting.
func Checksum(values map[string]any) string {
	b, err := json.Marshal(values)
	if err != nil { // values come from YAML or JSON; they always marshal
		b = fmt.Appendf(nil, "%v", values)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
