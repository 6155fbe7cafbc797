package web

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// loopbackNames are the names a browser on the machine itself reaches a
// loopback (or every-interface) listener by.
var loopbackNames = []string{"localhost", "127.0.0.1", "[::1]"}

// hostPolicy is the set of names the UI answers to in a request's Host
// header. A browser sends there the name from the address bar of the page
// that makes the request; a page whose own name was made to resolve to this
// server (DNS rebinding) sends its own name, which is not in the set.
type hostPolicy struct {
	anyPort map[string]bool // canonical names, on any port or none
	onPort  map[string]bool // canonical "name:port", on that port only
	names   []string        // as configured, for the log
}

// newHostPolicy allows the host of addr (the listen address), the loopback
// names when that host is a loopback or unspecified address (or addr is
// empty), and every entry of allowed.
func newHostPolicy(addr string, allowed []string) (*hostPolicy, error) {
	p := &hostPolicy{anyPort: map[string]bool{}, onPort: map[string]bool{}}
	host := ""
	if addr != "" {
		h, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, fmt.Errorf("Options.Addr %q is not host:port or :port: %w", addr, err)
		}
		host = h
	}
	if host != "" {
		// A host no browser can send (Listen refuses it too) adds nothing.
		_ = p.add(host)
	}
	if host == "" || isLoopback(host) || isUnspecified(host) {
		for _, n := range loopbackNames {
			if err := p.add(n); err != nil {
				return nil, err
			}
		}
	}
	for i, h := range allowed {
		if err := p.add(h); err != nil {
			return nil, fmt.Errorf("Options.AllowedHosts[%d]: %w", i, err)
		}
	}
	return p, nil
}

func (p *hostPolicy) add(entry string) error {
	if strings.Contains(entry, "/") {
		return fmt.Errorf("%q is not a host name, IP address or host:port: give the name alone, without scheme or path, e.g. notified.example.com", entry)
	}
	name, port, err := splitHost(entry)
	if err != nil {
		return err
	}
	if name == "" || !validName(name) || port == "" && strings.HasSuffix(entry, ":") && !strings.Contains(name, ":") {
		return fmt.Errorf("%q is not a host name, IP address or host:port: give the name alone, e.g. notified.example.com or notified.example.com:8443", entry)
	}
	if port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("%q: port %q is not a number from 1 to 65535", entry, port)
		}
		p.onPort[name+":"+port] = true
	} else {
		p.anyPort[name] = true
	}
	if !slices.Contains(p.names, entry) {
		p.names = append(p.names, entry)
	}
	return nil
}

// allows reports whether a request whose Host header is host may be
// answered. A name configured without a port matches on any port; one with
// a port matches on that port only, a Host without a port being taken as
// the default port of HTTP (80) or HTTPS (443).
func (p *hostPolicy) allows(host string) bool {
	name, port, err := splitHost(host)
	if err != nil || name == "" || !validName(name) {
		return false
	}
	if p.anyPort[name] {
		return true
	}
	if port == "" {
		return p.onPort[name+":80"] || p.onPort[name+":443"]
	}
	return p.onPort[name+":"+port]
}

// splitHost splits "name", "name:port", "[v6]", "[v6]:port" or a bare IPv6
// address into a canonical name (lower case, without a final dot; an IP
// address in Go's spelling, without zone, IPv4-mapped ones as IPv4) and the
// port, which is empty when there is none.
func splitHost(s string) (name, port string, err error) {
	host := s
	switch {
	case strings.HasPrefix(s, "["):
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return "", "", fmt.Errorf("%q lacks the ] that ends its IPv6 address", s)
		}
		host, port = s[1:end], s[end+1:]
		if port != "" {
			if port[0] != ':' {
				return "", "", fmt.Errorf("%q has %q after its IPv6 address, where a :port may be", s, port)
			}
			port = port[1:]
		}
		if _, err := netip.ParseAddr(host); err != nil {
			return "", "", fmt.Errorf("%q: %q is not an IPv6 address", s, host)
		}
	case strings.Count(s, ":") == 1:
		host, port, _ = strings.Cut(s, ":")
	}
	if port != "" && strings.Trim(port, "0123456789") != "" {
		return "", "", fmt.Errorf("%q: port %q is not a number", s, port)
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return a.WithZone("").Unmap().String(), port, nil
	}
	if strings.Contains(host, ":") {
		return "", "", fmt.Errorf("%q is neither an IP address nor host:port (write an IPv6 address with a port as [addr]:port)", s)
	}
	return strings.TrimSuffix(strings.ToLower(host), "."), port, nil
}

// validName reports whether name (canonical, from splitHost) is an IP
// address or a DNS name: letters, digits, hyphens and underscores in labels
// separated by dots.
func validName(name string) bool {
	if _, err := netip.ParseAddr(name); err == nil {
		return true
	}
	if len(name) > 253 {
		return false
	}
	for label := range strings.SplitSeq(name, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

func isUnspecified(host string) bool {
	a, err := netip.ParseAddr(strings.Trim(host, "[]"))
	return err == nil && a.IsUnspecified()
}

// CheckAllowedHosts reports the first of hosts that cannot be a name in a
// request's Host header, as Options.AllowedHosts would be refused by New.
func CheckAllowedHosts(hosts []string) error {
	p := &hostPolicy{anyPort: map[string]bool{}, onPort: map[string]bool{}}
	for _, h := range hosts {
		if err := p.add(h); err != nil {
			return err
		}
	}
	return nil
}
