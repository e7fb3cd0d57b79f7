package v1

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestValuesRoundTrip(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantMap map[string]any
		wantOut string
	}{
		{name: "object", in: `{"values":{"a":{"b":1},"n":null}}`,
			wantMap: map[string]any{"a": map[string]any{"b": float64(1)}, "n": nil},
			wantOut: `{"values":{"a":{"b":1},"n":null}}`},
		{name: "null", in: `{"values":null}`, wantMap: map[string]any{}, wantOut: `{}`},
		{name: "absent", in: `{}`, wantMap: map[string]any{}, wantOut: `{}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var spec struct {
				Values *Values `json:"values,omitempty"`
			}
			if err := json.Unmarshal([]byte(tt.in), &spec); err != nil {
				t.Fatalf("unmarshal: %v", err)
			}
			got, err := spec.Values.Map()
			if err != nil {
				t.Fatalf("Map: %v", err)
			}
			if !reflect.DeepEqual(got, tt.wantMap) {
				t.Errorf("Map() = %#v, want %#v", got, tt.wantMap)
			}
			out, err := json.Marshal(spec)
			if err != nil {
				t.Fatalf("marshal: %v", err)
			}
			if string(out) != tt.wantOut {
				t.Errorf("marshal = %s, want %s", out, tt.wantOut)
			}
		})
	}
}

func TestValuesMapRefusesNonObject(t *testing.T) {
	v := &Values{Raw: []byte(`[1,2]`)}
	if _, err := v.Map(); err == nil {
		t.Fatal("Map() of a list succeeded, want an error")
	}
}

func TestValuesDeepCopyIsIndependent(t *testing.T) {
	a := &Values{Raw: []byte(`{"a":1}`)}
	b := a.DeepCopy()
	b.Raw[6] = '2'
	if string(a.Raw) != `{"a":1}` {
		t.Fatalf("DeepCopy shares bytes: original now %s", a.Raw)
	}
}
