package main

import (
	"testing"

	"github.com/helmflux/helmflux/api/fluxd"
)

// TestFingerprintText: identity -l prints the fingerprint, -v its picture
// below, every line ended once whether or not the operator's picture ends
// in a newline (fluxd's did).
func TestFingerprintText(t *testing.T) {
	art := "+--[ED25519 256]--+\n|        S        |\n+------[MD5]------+"
	for _, tc := range []struct {
		name   string
		fp     fluxd.Fingerprint
		visual bool
		want   string
	}{
		{"fingerprint", fluxd.Fingerprint{Hash: "MD5:aa:bb", Randomart: art + "\n"}, false, "MD5:aa:bb\n"},
		{"picture ended", fluxd.Fingerprint{Hash: "MD5:aa:bb", Randomart: art + "\n"}, true, "MD5:aa:bb\n" + art + "\n"},
		{"picture not ended", fluxd.Fingerprint{Hash: "MD5:aa:bb", Randomart: art}, true, "MD5:aa:bb\n" + art + "\n"},
		{"no picture", fluxd.Fingerprint{Hash: "MD5:aa:bb"}, true, "MD5:aa:bb\n"},
	} {
		if got := fingerprintText(tc.fp, tc.visual); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}
