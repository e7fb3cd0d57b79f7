package update

import (
	"strings"
	"testing"
)

func TestSetScalar(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		doc   int
		path  []string
		value string
		want  string
	}{
		{"plain", "a: 1.0.0\n", 0, []string{"a"}, "1.0.1", "a: 1.0.1\n"},
		{"plain keeps comment and spacing", "a:   x   # c\nb: y\n", 0, []string{"a"}, "zz", "a:   zz   # c\nb: y\n"},
		{"plain to float is quoted", "a: 1.9\n", 0, []string{"a"}, "1.10", "a: \"1.10\"\n"},
		{"plain to int is quoted", "a: v1\n", 0, []string{"a"}, "20240101", "a: \"20240101\"\n"},
		{"plain to YAML 1.1 bool is quoted", "a: v1\n", 0, []string{"a"}, "on", "a: \"on\"\n"},
		{"plain to YAML 1.1 int with underscore is quoted", "a: v1\n", 0, []string{"a"}, "1_000", "a: \"1_000\"\n"},
		{"plain to sexagesimal is quoted", "a: v1\n", 0, []string{"a"}, "1:20", "a: \"1:20\"\n"},
		{"plain to exponent is quoted", "a: v1\n", 0, []string{"a"}, "1e3", "a: \"1e3\"\n"},
		{"plain to timestamp is quoted", "a: v1\n", 0, []string{"a"}, "2024-01-01", "a: \"2024-01-01\"\n"},
		{"plain to YAML 1.1 short bool is quoted", "a: v1\n", 0, []string{"a"}, "y", "a: \"y\"\n"},
		{"plain to null word is quoted", "a: v1\n", 0, []string{"a"}, "Null", "a: \"Null\"\n"},
		{"plain to empty is quoted", "a: v1\n", 0, []string{"a"}, "", "a: \"\"\n"},
		{"plain to version string stays plain", "a: 1.9.1\n", 0, []string{"a"}, "1.10.0", "a: 1.10.0\n"},
		{"plain image reference stays plain", "a: x:1\n", 0, []string{"a"}, "localhost:5000/x:1.10", "a: localhost:5000/x:1.10\n"},
		{"plain with space is quoted", "a: x\n", 0, []string{"a"}, "x #y", "a: \"x #y\"\n"},
		{"single-quoted", "a: 'x'\n", 0, []string{"a"}, "it's", "a: 'it''s'\n"},
		{"single-quoted with escaped quote before", "a: 'it''s' # c\n", 0, []string{"a"}, "1.10", "a: '1.10' # c\n"},
		{"single-quoted cannot hold a newline", "a: 'x'\n", 0, []string{"a"}, "x\ny", "a: \"x\\ny\"\n"},
		{"double-quoted escapes", "a: \"x\"\n", 0, []string{"a"}, "a\"b\\c\td\x01\u2028", "a: \"a\\\"b\\\\c\\td\\x01\\L\"\n"},
		{"double-quoted with escapes before", "a: \"\\\"x\\u00fc\" # c\n", 0, []string{"a"}, "y", "a: \"y\" # c\n"},
		{"non-ASCII key before the scalar", "ü: {ö: x, tag: \"1.0\"}\n", 0, []string{"ü", "tag"}, "1.1", "ü: {ö: x, tag: \"1.1\"}\n"},
		{"non-ASCII value before the scalar", "a: {b: 日本語, c: x}\n", 0, []string{"a", "c"}, "w", "a: {b: 日本語, c: w}\n"},
		{"non-ASCII comment line before", "# ü ö ä\na: x\n", 0, []string{"a"}, "w", "# ü ö ä\na: w\n"},
		{"BOM on the scalar's line", "\ufeffa: x\n", 0, []string{"a"}, "w", "\ufeffa: w\n"},
		{"CRLF", "a: x\r\nb: y\r\n", 0, []string{"b"}, "z", "a: x\r\nb: z\r\n"},
		{"lone CR", "a: x\rb: y\r", 0, []string{"b"}, "z", "a: x\rb: z\r"},
		{"LS in a comment is a line break to yaml.v3", "a: x # \u2028\nb: y\n", 0, []string{"b"}, "z", "a: x # \u2028\nb: z\n"},
		{"NEL in a comment is a line break to yaml.v3", "a: x # \u0085\nb: y\n", 0, []string{"b"}, "z", "a: x # \u0085\nb: z\n"},
		{"tab separator", "a:\tx\n", 0, []string{"a"}, "w", "a:\tw\n"},
		{"sequence item", "a:\n- x\n- y\n", 0, []string{"a", "[1]"}, "z", "a:\n- x\n- z\n"},
		{"flow sequence item", "a: [x, y]\n", 0, []string{"a", "[0]"}, "z", "a: [z, y]\n"},
		{"flow sequence with colon value", "a: [x, y]\n", 0, []string{"a", "[0]"}, "r:1", "a: [r:1, y]\n"},
		{"key with dots", "a.b: {c: x}\n", 0, []string{"a.b", "c"}, "w", "a.b: {c: w}\n"},
		{"key that looks like an index", "'[0]': x\n", 0, []string{"[0]"}, "w", "'[0]': w\n"},
		{"third document after empty ones", "---\n---\na: x\n---\na: x\n", 2, []string{"a"}, "w", "---\n---\na: x\n---\na: w\n"},
		{"document with explicit start and content", "--- \na: x\n...\n", 0, []string{"a"}, "w", "--- \na: w\n...\n"},
		{"same value is a no-op edit", "a: x\n", 0, []string{"a"}, "x", "a: x\n"},
		{"other anchors elsewhere are fine", "d: &d {k: v}\ne: *d\na: x\n", 0, []string{"a"}, "w", "d: &d {k: v}\ne: *d\na: w\n"},
		{"root scalar", "--- x\n", 0, nil, "w", "--- w\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := SetScalar([]byte(tt.in), tt.doc, tt.path, tt.value)
			if err != nil {
				t.Fatalf("SetScalar: %v", err)
			}
			if string(got) != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestSetScalarRefuses(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		doc   int
		path  []string
		value string
		err   string
	}{
		{"literal block", "a: |\n  x\n", 0, []string{"a"}, "y", "block scalar"},
		{"folded block", "a: >-\n  x\n", 0, []string{"a"}, "y", "block scalar"},
		{"multi-line plain", "a: x\n  y\n", 0, []string{"a"}, "z", "several lines"},
		{"multi-line double-quoted", "a: \"x\n  y\"\n", 0, []string{"a"}, "z", "several lines"},
		{"escaped line break", "a: \"x\\\n  y\"\n", 0, []string{"a"}, "z", "several lines"},
		{"multi-line single-quoted", "a: 'x\n  y'\n", 0, []string{"a"}, "z", "several lines"},
		{"alias", "b: &b x\na: *b\n", 0, []string{"a"}, "y", "alias"},
		{"anchored scalar", "a: &b x\nc: *b\n", 0, []string{"a"}, "y", "anchored"},
		{"inside an anchored mapping", "a: &b {c: x}\nd: *b\n", 0, []string{"a", "c"}, "y", "anchored"},
		{"through an alias", "a: &b {c: x}\nd: *b\n", 0, []string{"d", "c"}, "y", "alias"},
		{"explicit tag", "a: !!str 1.0\n", 0, []string{"a"}, "y", "explicit tag"},
		{"empty value", "a:\n", 0, []string{"a"}, "y", "empty value"},
		{"missing key", "a: x\n", 0, []string{"b"}, "y", "no such key"},
		{"duplicate key", "a: x\na: y\n", 0, []string{"a"}, "z", "duplicate key"},
		{"index out of range", "a: [x]\n", 0, []string{"a", "[1]"}, "y", "no such sequence item"},
		{"bad index", "a: [x]\n", 0, []string{"a", "[-1]"}, "y", "no such sequence item"},
		{"not a scalar", "a: {b: c}\n", 0, []string{"a"}, "y", "not a scalar"},
		{"through a scalar", "a: x\n", 0, []string{"a", "b"}, "y", "not a mapping or sequence"},
		{"document out of range", "a: x\n", 1, []string{"a"}, "y", "the file has 1"},
		{"empty document", "---\n---\na: x\n", 0, []string{"a"}, "y", "not a mapping or sequence"},
		{"malformed", "a: [x\n", 0, []string{"a"}, "y", "yaml"},
		{"invalid UTF-8 value", "a: x\n", 0, []string{"a"}, "\xff", "UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := SetScalar([]byte(tt.in), tt.doc, tt.path, tt.value)
			if err == nil {
				t.Fatalf("SetScalar succeeded: %q", got)
			}
			if !strings.Contains(err.Error(), tt.err) {
				t.Errorf("error %q does not contain %q", err, tt.err)
			}
		})
	}
}

func TestSplitRef(t *testing.T) {
	tests := []struct {
		in, name, tag string
		ok            bool
	}{
		{"nginx", "nginx", "", true},
		{"nginx:1.25", "nginx", "1.25", true},
		{"ghcr.io/org/app:v1.0.0-rc.1", "ghcr.io/org/app", "v1.0.0-rc.1", true},
		{"localhost:5000/app", "localhost:5000/app", "", true},
		{"localhost:5000/app:1", "localhost:5000/app", "1", true},
		{"docker.io/library/nginx:latest", "docker.io/library/nginx", "latest", true},
		{"app@sha256:abc", "", "", false},
		{"app:1.0@sha256:abc", "", "", false},
		{"app:", "", "", false},
		{":1.0", "", "", false},
		{"", "", "", false},
		{"app:-x", "", "", false},
		{"app:a b", "", "", false},
		{"{{ .Values.image }}", "", "", false},
		{"registry/", "", "", false},
	}
	for _, tt := range tests {
		name, tag, ok := SplitRef(tt.in)
		if name != tt.name || tag != tt.tag || ok != tt.ok {
			t.Errorf("SplitRef(%q) = %q, %q, %v; want %q, %q, %v", tt.in, name, tag, ok, tt.name, tt.tag, tt.ok)
		}
	}
}

func TestSetScalarRefusesUTF16(t *testing.T) {
	utf16 := []byte{0xff, 0xfe, 'a', 0, ':', 0, ' ', 0, 'x', 0, '\n', 0}
	if _, err := SetScalar(utf16, 0, []string{"a"}, "y"); err == nil || !strings.Contains(err.Error(), "UTF-8") {
		t.Errorf("UTF-16 input: %v", err)
	}
}
