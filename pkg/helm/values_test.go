package helm

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestMergeValuesInHelmOperatorOrder(t *testing.T) {
	tests := []struct {
		name   string
		layers []string
		want   map[string]any
	}{
		{"empty", nil, map[string]any{}},
		{"later wins", []string{"a: 1", "a: 2"}, map[string]any{"a": float64(2)}},
		{"maps merge deeply", []string{"image: {repo: x, tag: '1'}", "image: {tag: '2'}"},
			map[string]any{"image": map[string]any{"repo": "x", "tag": "2"}}},
		{"lists replace", []string{"l: [1, 2]", "l: [3]"}, map[string]any{"l": []any{float64(3)}}},
		{"a scalar replaces a map", []string{"a: {b: 1}", "a: x"}, map[string]any{"a": "x"}},
		{"a map replaces a scalar", []string{"a: x", "a: {b: 1}"}, map[string]any{"a": map[string]any{"b": float64(1)}}},
		{"null is a value", []string{"a: 1", "a: null"}, map[string]any{"a": nil}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var layers []map[string]any
			for _, l := range tt.layers {
				v, err := ParseValues([]byte(l))
				if err != nil {
					t.Fatal(err)
				}
				layers = append(layers, v)
			}
			before := Checksum(map[string]any{"layers": layers})
			got := MergeValues(layers...)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v, want %#v", got, tt.want)
			}
			if Checksum(map[string]any{"layers": layers}) != before {
				t.Error("MergeValues modified its input")
			}
		})
	}
}

func TestChecksumIgnoresFormatting(t *testing.T) {
	a, _ := ParseValues([]byte("b: 2\na: {x: 1, y: [1, 2]}\n"))
	b, _ := ParseValues([]byte("a:\n  y:\n  - 1\n  - 2\n  x: 1\nb: 2 # same\n"))
	if Checksum(a) != Checksum(b) {
		t.Error("equal values have different checksums")
	}
	c, _ := ParseValues([]byte("a: {x: 1, y: [2, 1]}\nb: 2"))
	if Checksum(a) == Checksum(c) {
		t.Error("different values have the same checksum")
	}
}

func TestParseValuesNeverQuotesTheDocument(t *testing.T) {
	const canary = "s3cr3t-canary"
	for _, doc := range []string{
		"password: " + canary + "\n  bad: indentation: here",
		"- " + canary,
		canary,
		"a: [" + canary,
	} {
		_, err := ParseValues([]byte(doc))
		if !errors.Is(err, ErrInvalidValues) {
			t.Fatalf("%q: got %v, want ErrInvalidValues", doc, err)
		}
		if strings.Contains(err.Error(), canary) {
			t.Errorf("the error quotes the values: %v", err)
		}
	}
	if v, err := ParseValues([]byte("")); err != nil || len(v) != 0 {
		t.Errorf("empty document: %v, %v", v, err)
	}
}
