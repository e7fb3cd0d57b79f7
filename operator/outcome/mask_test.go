package outcome

import (
	"errors"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestMask(t *testing.T) {
	var m Mask
	if got := m.String("nothing to mask"); got != "nothing to mask" {
		t.Errorf("the zero Mask changed text: %q", got)
	}
	m.Add(map[string]any{
		"password": "hunter2hunter2",
		"short":    "abc",
		"nested":   []any{map[string]any{"token": "tok-en"}, float64(123456789), true, int64(31337)},
		"pem":      "-----BEGIN KEY-----\nMIIsecretline\n-----END KEY-----",
		"quoted":   `say "hi" there`,
		"inner":    "hunter2",
	})
	for in, want := range map[string]string{
		`fail: hunter2hunter2`:                       "fail: " + Masked,
		`name "hunter2" is invalid`:                  `name "` + Masked + `" is invalid`,
		"line 2: MIIsecretline":                      "line 2: " + Masked,
		`value: "say \"hi\" there"`:                  `value: "` + Masked + `"`,
		"replicas 123456789 and 1.23456789e+08 port": "replicas " + Masked + " and " + Masked + " port",
		"abc stays, tok-en goes, 31337 goes":         "abc stays, " + Masked + " goes, " + Masked + " goes",
		"wait: true stays":                           "wait: true stays",
	} {
		if got := m.String(in); got != want {
			t.Errorf("String(%q) = %q, want %q", in, got, want)
		}
	}
	err := m.Error(WaitForChange("UpgradeFailed", errors.New("upgrade: execution error: hunter2hunter2")))
	if c, r := Of(err, ""); c != Waiting || r != "UpgradeFailed" || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("Error kept %v %q %q", c, r, err)
	}
	if m.Error(nil) != nil {
		t.Error("Error(nil) is not nil")
	}
	list := []metav1.Condition{{Type: "Ready", Message: "tok-en"}}
	m.Conditions(list)
	if list[0].Message != Masked {
		t.Errorf("Conditions left %q", list[0].Message)
	}
}
