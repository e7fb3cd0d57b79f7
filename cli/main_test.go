package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestVersionPrintsStampedVersion(t *testing.T) {
	old := version
	version = "v9.8.7-test"
	t.Cleanup(func() { version = old })

	var out bytes.Buffer
	cmd := newRootCmd(&out)
	cmd.SetArgs([]string{"version"})
	if err := cmd.Execute(); err != nil {
		t.Fatalf("version: %v", err)
	}
	if got := strings.TrimSpace(out.String()); got != "v9.8.7-test" {
		t.Fatalf("version printed %q, want %q", got, "v9.8.7-test")
	}
}

func TestVersionRejectsArguments(t *testing.T) {
	var out bytes.Buffer
	cmd := newRootCmd(&out)
	cmd.SetArgs([]string{"version", "extra"})
	if err := cmd.Execute(); err == nil {
		t.Fatal("version with an argument succeeded, want an error")
	}
}
