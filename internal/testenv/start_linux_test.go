//go:build linux

package testenv

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// grandchildEnv makes the test binary, re-executed by
// TestChildrenDieWithTheTestProcess, start a child through startProcess and
// wait to be killed. Its value is the directory for the child's log.
const grandchildEnv = "HELMFLUX_TESTENV_GRANDCHILD_DIR"

// TestChildrenDieWithTheTestProcess runs this test binary as a child that
// starts `sleep 300` the way StartWorkloads starts kwok and the controllers,
// SIGKILLs that child (no cleanup runs, as under `go test -timeout`), and
// asserts that the sleep dies with it rather than living on as an orphan.
func TestChildrenDieWithTheTestProcess(t *testing.T) {
	if dir := os.Getenv(grandchildEnv); dir != "" {
		startGrandchild(t, dir)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestChildrenDieWithTheTestProcess$", "-test.count=1") // #nosec G204 -- the test binary itself
	cmd.Env = append(os.Environ(), grandchildEnv+"="+t.TempDir())
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	pid, lines := 0, bufio.NewScanner(out)
	for pid == 0 && lines.Scan() {
		if s, ok := strings.CutPrefix(lines.Text(), "grandchild "); ok {
			pid, _ = strconv.Atoi(s)
		}
	}
	if pid <= 0 {
		t.Fatalf("the child test process reported no grandchild; stderr:\n%s", stderr.String())
	}
	started, alive := procStart(pid)
	if !alive {
		t.Fatalf("grandchild %d is not running", pid)
	}
	t.Cleanup(func() { // only if the test failed: never leave it behind
		if s, ok := procStart(pid); ok && s == started {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})

	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	Eventually(t, 10*time.Second, fmt.Sprintf("grandchild %d to die with its parent", pid), func() (bool, string) {
		s, ok := procStart(pid)
		return !ok || (s != "" && s != started), "still running"
	})
}

// startGrandchild is the child's side: start sleep, say its pid, and wait to
// be killed (bounded, so a lost parent does not leave it for long).
func startGrandchild(t *testing.T, dir string) {
	bin, err := exec.LookPath("sleep")
	if err != nil {
		t.Fatal(err)
	}
	p, err := startProcess(bin, "sleep", []string{"300"}, nil, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("grandchild %d\n", p.cmd.Process.Pid)
	time.Sleep(time.Minute)
	_ = p.stop()
	t.Fatal("the parent test did not kill this process")
}

// procStart returns the start time of process pid (field 22 of
// /proc/<pid>/stat, to tell a reused pid apart) and whether it is alive: a
// zombie, dead but not yet reaped by whoever inherited it, counts as gone.
func procStart(pid int) (string, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", false
	case err != nil:
		return "", true // unknown: never taken for gone
	}
	s := string(b)
	// The command name (field 2) is in parentheses and may hold anything.
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	switch {
	case len(f) < 20:
		return "", true
	case f[0] == "Z" || f[0] == "X":
		return "", false
	}
	return f[19], true
}
