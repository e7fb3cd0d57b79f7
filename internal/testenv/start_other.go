//go:build !linux

package testenv

import "os/exec"

// startChild starts cmd. Only Linux can tie a child's life to the test
// process (see start_linux.go); elsewhere the stop functions and t.Cleanup
// are all that end it, so a test binary killed outright leaves it running.
func startChild(cmd *exec.Cmd) error { return cmd.Start() }
