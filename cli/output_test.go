package main

import (
	"bytes"
	"testing"
)

// TestUsageErrorsOfCobra: the command lines cobra itself refuses are usage
// errors (exit status 2), as main maps them, never failed operations.
func TestUsageErrorsOfCobra(t *testing.T) {
	for _, args := range [][]string{
		{"automate"}, // a required flag missing
		{"why", "-o", "json"},
		{"policy", "-w", "default:deployment/app", "--automate", "--deautomate"}, // mutually exclusive
		{"nope"},                   // unknown command
		{"sync", "now"},            // an argument
		{"version", "--bogus"},     // unknown flag
		{"list-images", "-l", "x"}, // not a number
	} {
		var out bytes.Buffer
		cmd := newRootCmd(&out)
		cmd.SetErr(&out)
		cmd.SetArgs(append([]string{"--url", "http://127.0.0.1:1/api/flux"}, args...))
		err := cmd.Execute()
		if err == nil {
			t.Errorf("%q succeeded, want a usage error", args)
			continue
		}
		if code := exitCode(err); code != exitUsage && !isUsage(err) {
			t.Errorf("%q: %v is exit status %d and no usage error, want %d", args, err, code, exitUsage)
		}
	}
}
