//go:build linux

package testenv

import (
	"os/exec"
	"runtime"
	"sync"
	"syscall"
)

// startChild starts cmd so that the kernel kills it (SIGKILL) as soon as the
// test process dies, however it dies. Stop functions and t.Cleanup run only
// when the test binary ends normally; one killed by `go test -timeout`, by
// a developer's Ctrl-C twice or by SIGKILL would otherwise leave
// kube-controller-manager, kube-scheduler, kwok or an operator running
// against a control plane that is gone, holding CPU on a 2-core machine.
//
// The kernel sends the parent-death signal when the thread that forked the
// child exits, not the process, and Go ends an OS thread whenever a
// goroutine exits while locked to it. So every child is forked from one
// goroutine that locks itself to its thread and never returns: that thread
// lives exactly as long as the process.
func startChild(cmd *exec.Cmd) error {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	errc := make(chan error, 1)
	forker() <- func() { errc <- cmd.Start() }
	return <-errc
}

// forker returns the channel of the goroutine that forks every child.
var forker = sync.OnceValue(func() chan<- func() {
	calls := make(chan func())
	go func() {
		runtime.LockOSThread() // never unlocked, and the goroutine never returns
		for f := range calls {
			f()
		}
	}()
	return calls
})
