//go:build !linux

package fluxctl

import (
	"errors"
	"os"
	"syscall"
)

func openPTY() (master, slave *os.File, err error) {
	return nil, nil, errors.New("pseudo-terminals are opened on Linux only")
}

func controllingTTY() *syscall.SysProcAttr { return nil }
