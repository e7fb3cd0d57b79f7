package testenv

import (
	"errors"
	"net"
)

// ErrNoHostAddress means the machine has no network interface address
// besides loopback.
var ErrNoHostAddress = errors.New("no non-loopback network address on this machine")

// HostListener listens on a free port of the machine's first non-loopback
// unicast address (IPv4 first), for servers that an operator refusing
// loopback URLs (--allow-local-urls=false, the lockdown profile) must
// still reach.
func HostListener() (net.Listener, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, err
	}
	var v6 []net.IP
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok || n.IP.IsLoopback() || !n.IP.IsGlobalUnicast() {
			continue
		}
		if n.IP.To4() == nil {
			v6 = append(v6, n.IP)
			continue
		}
		return net.Listen("tcp", net.JoinHostPort(n.IP.String(), "0"))
	}
	for _, ip := range v6 {
		if l, err := net.Listen("tcp", net.JoinHostPort(ip.String(), "0")); err == nil {
			return l, nil
		}
	}
	return nil, ErrNoHostAddress
}
