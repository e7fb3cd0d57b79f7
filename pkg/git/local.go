package git

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// WithoutLocalURLs makes the Cache refuse to fetch from or push to a
// repository on the operator's own machine (IsLocalURL): in a shared
// cluster a tenant must not read the operator's disk (file://) or services
// that listen only on its loopback interface. The error matches ErrLocalURL.
func WithoutLocalURLs() Option { return func(c *Cache) { c.refuseLocal = true } }

// IsLocalURL reports whether url reaches the machine the operator runs on:
// a file:// URL or a plain path, or a host that is loopback by its name or
// address (localhost and *.localhost, 127.0.0.0/8, ::1, the unspecified
// 0.0.0.0 and ::, which dial the local host, and the short and numeric
// spellings of those that resolvers accept, such as 127.1 or 2130706433).
// It judges the URL only: a DNS name that resolves to a loopback address is
// not caught, which is what a network policy is for. A URL that does not
// parse is not local (it is refused as invalid anyway).
func IsLocalURL(url string) bool {
	r, err := parseRemote(url)
	return err == nil && r.isLocal()
}

func (r *remote) isLocal() bool {
	return r.scheme == "file" || IsLoopbackHost(r.host)
}

// IsLoopbackHost reports whether host (a name or address, possibly with a
// port or in brackets) names the local machine, by the rules of IsLocalURL.
// It is exported so that every other fetch of a URL a tenant names (chart
// repositories, OCI registries, values URLs) judges hosts the same way.
func IsLoopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.ToLower(strings.Trim(host, "[]")), ".")
	if i := strings.IndexByte(host, '%'); i >= 0 {
		host = host[:i] // an IPv6 zone
	}
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	if ip == nil {
		ip = parseInetAton(host)
	}
	return ip != nil && (ip.IsLoopback() || ip.IsUnspecified())
}

// parseInetAton parses the IPv4 spellings that C's inet_aton (and so many
// resolvers) accept beyond the dotted quad: one to four parts, each decimal,
// octal (leading 0) or hex (0x), the last filling the remaining bytes. It
// returns nil for anything else.
func parseInetAton(s string) net.IP {
	parts := strings.Split(s, ".")
	if s == "" || len(parts) > 4 {
		return nil
	}
	vals := make([]uint64, len(parts))
	for i, p := range parts {
		if p == "" || p[0] < '0' || p[0] > '9' {
			return nil
		}
		base := 10
		switch {
		case strings.HasPrefix(p, "0x"):
			base, p = 16, p[2:]
		case len(p) > 1 && p[0] == '0':
			base, p = 8, p[1:]
		}
		v, err := strconv.ParseUint(p, base, 32)
		if err != nil {
			return nil
		}
		vals[i] = v
	}
	var n uint64
	for i, v := range vals[:len(vals)-1] {
		if v > 0xff {
			return nil
		}
		n |= v << (8 * (3 - i))
	}
	last := vals[len(vals)-1]
	if last >= 1<<(8*(5-len(vals))) {
		return nil
	}
	n |= last
	return net.ParseIP(fmt.Sprintf("%d.%d.%d.%d", n>>24&0xff, n>>16&0xff, n>>8&0xff, n&0xff))
}
