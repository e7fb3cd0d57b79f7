package bench

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/helmflux/helmflux/internal/testenv"
)

// clockTicks is the unit of /proc/stat's and /proc/<pid>/stat's CPU times
// (USER_HZ, 100 on every Linux architecture Go supports).
const clockTicks = 100

// procStat is what the benchmarks read of /proc/<pid>/stat.
type procStat struct {
	pid, ppid int
	comm      string // cut to 15 bytes by the kernel
	state     string // R, S, Z (exited, not yet waited for), ...
	// CPU times in clock ticks: the process's own (utime, stime) and that
	// of its children it has waited for (cutime, cstime).
	utime, stime, cutime, cstime int64
}

// readProcStat reads /proc/<pid>/stat.
func readProcStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	// The command name is in parentheses and may hold spaces and
	// parentheses; the fields after the last ')' start with the state
	// (field 3 of proc(5)), so field n of proc(5) is fields[n-3].
	open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return procStat{}, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	fields := strings.Fields(string(b[end+1:]))
	if len(fields) < 15 {
		return procStat{}, fmt.Errorf("/proc/%d/stat has %d fields after the command", pid, len(fields))
	}
	st := procStat{pid: pid, comm: string(b[open+1 : end]), state: fields[0]}
	nums := []*int64{&st.utime, &st.stime, &st.cutime, &st.cstime}
	for i, f := range fields[11:15] {
		if *nums[i], err = strconv.ParseInt(f, 10, 64); err != nil {
			return procStat{}, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
	}
	if st.ppid, err = strconv.Atoi(fields[1]); err != nil {
		return procStat{}, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return st, nil
}

// cpuTicks returns the process's own CPU time and that of the children it
// waited for.
func (s procStat) cpuTicks() int64 { return s.utime + s.stime + s.cutime + s.cstime }

func (s procStat) String() string { return fmt.Sprintf("pid %d %s (%s)", s.pid, s.comm, s.state) }

// descendants returns every process below this one: its children (the
// control plane, kube-controller-manager, kube-scheduler, kwok, the
// operator) and theirs, zombies included.
func descendants() ([]procStat, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	children := map[int][]procStat{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := readProcStat(pid)
		if err != nil {
			continue // gone since ReadDir
		}
		children[st.ppid] = append(children[st.ppid], st)
	}
	var out []procStat
	queue := []int{os.Getpid()}
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		for _, c := range children[pid] {
			out = append(out, c)
			queue = append(queue, c.pid)
		}
	}
	return out, nil
}

// leftovers describes what still runs in this process's name: processes
// below it and in-process operators; "" when there is nothing.
func leftovers() (string, error) {
	procs, err := descendants()
	if err != nil {
		return "", err
	}
	var parts []string
	for _, p := range procs {
		parts = append(parts, p.String())
	}
	if n := testenv.InProcessRunning(); n > 0 {
		parts = append(parts, fmt.Sprintf("%d in-process operator(s)", n))
	}
	return strings.Join(parts, ", "), nil
}

// settleTimeout is how long TestBench lets what a benchmark stopped take
// to end: a process killed after a stop timed out (envtest sends SIGKILL
// and returns) is reaped a moment later.
const settleTimeout = 5 * time.Second

// waitIsolated waits until nothing runs in this process's name any more,
// and returns an error naming what still runs after timeout.
func waitIsolated(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		left, err := leftovers()
		if err != nil {
			return err
		}
		if left == "" {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New(left)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// killDescendants kills (SIGKILL) every process below this one after a
// failed check, and waits up to settleTimeout until they are gone (reaped
// by whoever started them): envtest does not tie etcd and kube-apiserver
// to the test binary's life, so a control plane left behind would outlive
// it.
func killDescendants() {
	procs, _ := descendants()
	for _, p := range procs {
		_ = syscall.Kill(p.pid, syscall.SIGKILL)
	}
	deadline := time.Now().Add(settleTimeout)
	for _, p := range procs {
		for time.Now().Before(deadline) {
			// Not "Z": a killed process's main thread can be a zombie
			// while its other threads are still exiting.
			if _, err := readProcStat(p.pid); err != nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// machineBusyTicks returns the CPU time all processes of the machine have
// used since boot (/proc/stat: user, nice, system, irq, softirq and steal;
// guest time is within user and nice).
func machineBusyTicks() (int64, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	fields := strings.Fields(line)
	if len(fields) < 9 || fields[0] != "cpu" {
		return 0, fmt.Errorf("/proc/stat: unexpected first line %q", line)
	}
	var busy int64
	for i, f := range fields[1:9] {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/stat: %w", err)
		}
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
	}
	return busy, nil
}

// noiseGauge measures, over one benchmark, the CPU time used by the rest
// of the machine: everything but this process and the processes below it.
// It reads the machine's busy time and this process's own CPU time plus
// that of the children it waited for, so it must end once every child has
// been waited for (after waitIsolated); a child that ended unwaited would
// count as noise.
type noiseGauge struct {
	start      time.Time
	busy, self int64
	reference  time.Duration
}

func startNoiseGauge() (noiseGauge, error) {
	ref := referenceLoop()
	busy, self, err := cpuTicksNow()
	return noiseGauge{start: time.Now(), busy: busy, self: self, reference: ref}, err
}

// referenceInts is what referenceLoop sorts a copy of: the same
// pseudo-random numbers every run.
var referenceInts = func() []int {
	rng := rand.New(rand.NewPCG(1, 2))
	s := make([]int, 1<<18)
	for i := range s {
		s[i] = rng.Int()
	}
	return s
}()

// referenceLoop times a fixed piece of work on one core (sorting 256 Ki
// integers, the fastest of 5 tries): how fast this machine runs ordinary
// code right now. A virtual machine slowed by its neighbours on the host
// shows no CPU time of other processes, but it shows here; figures from
// runs whose reference times differ compare only after scaling by them.
func referenceLoop() time.Duration {
	best := time.Duration(math.MaxInt64)
	buf := make([]int, len(referenceInts))
	for range 5 {
		copy(buf, referenceInts)
		start := time.Now()
		slices.Sort(buf)
		best = min(best, time.Since(start))
	}
	return best
}

// cpuTicksNow reads the machine's busy time and this process's CPU time
// with its waited-for children's.
func cpuTicksNow() (busy, self int64, err error) {
	if busy, err = machineBusyTicks(); err != nil {
		return 0, 0, err
	}
	st, err := readProcStat(os.Getpid())
	return busy, st.cpuTicks(), err
}

// noise is what a noiseGauge read: CPU seconds of other processes and of
// this benchmark over wall seconds of a machine of cores cores.
type noise struct {
	other, own, wall float64
	cores            int
	// reference is referenceLoop's time before and after the benchmark.
	reference [2]time.Duration
}

func (g noiseGauge) stop() (noise, error) {
	busy, self, err := cpuTicksNow()
	if err != nil {
		return noise{}, err
	}
	own := self - g.self
	return noise{
		// The kernel counts the machine's time in ticks and a process's
		// from its run time, so the two differ by a few percent of the
		// benchmark's own: on a quiet machine this can be a little below
		// zero, and is shown as it is.
		other:     float64(busy-g.busy-own) / clockTicks,
		own:       float64(own) / clockTicks,
		wall:      time.Since(g.start).Seconds(),
		cores:     runtime.NumCPU(),
		reference: [2]time.Duration{g.reference, referenceLoop()},
	}, nil
}

// String is the note's text: "other processes used 3.10 CPU-s of 2 cores
// × 40.0 s (4%); the benchmark 51.20 CPU-s".
func (n noise) String() string {
	return fmt.Sprintf("other processes used %.2f CPU-s of %d cores × %.1f s (%.0f%%); the benchmark %.2f CPU-s; reference loop %s before, %s after",
		n.other, n.cores, n.wall, 100*n.other/(n.wall*float64(n.cores)), n.own,
		n.reference[0].Round(100*time.Microsecond), n.reference[1].Round(100*time.Microsecond))
}

// The check between two benchmarks sees a process this one started, by
// name, until it has been waited for.
func TestIsolationSeesChildProcesses(t *testing.T) {
	if err := waitIsolated(settleTimeout); err != nil {
		t.Fatalf("before the test: %v", err)
	}
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	err := waitIsolated(100 * time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("pid %d sleep", cmd.Process.Pid)) {
		t.Errorf("with sleep running: %v, want it named", err)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if err := waitIsolated(settleTimeout); err != nil {
		t.Errorf("after sleep was waited for: %v", err)
	}
}

// The noise gauge counts the CPU time of a grandchild that ended as the
// benchmark's, not as noise.
func TestNoiseGaugeCountsDescendants(t *testing.T) {
	g, err := startNoiseGauge()
	if err != nil {
		t.Fatal(err)
	}
	// timeout waits for its shell, which does a fixed amount of work (about
	// a CPU-second here): the CPU time it gets does not depend on how busy
	// the machine is, only how long it takes.
	if out, err := exec.Command("timeout", "120", "sh", "-c", "i=0; while [ $i -lt 1200000 ]; do i=$((i+1)); done").CombinedOutput(); err != nil {
		t.Fatalf("the loop: %v %s", err, out)
	}
	n, err := g.stop()
	if err != nil {
		t.Fatal(err)
	}
	if n.own < 0.5 {
		t.Errorf("%s: want at least 0.5 CPU-s of the benchmark's own", n)
	}
	t.Logf("%s", n)
}
