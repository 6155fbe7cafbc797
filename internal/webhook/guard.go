package webhook

import (
	"fmt"
	"net/netip"
	"syscall"
)

// RefusedError is the error of a connection refused by the address policy:
// the target's address is not public and neither [Options.AllowPrivate] nor
// [Options.AllowCIDRs] allows it. A delivery that fails with it is Permanent.
type RefusedError struct {
	// Addr is the address the connection would have used.
	Addr netip.Addr
	// Kind names the reserved range: "loopback", "private", "link-local", ...
	Kind string
}

// Error says what was refused and how to allow it.
func (e *RefusedError) Error() string {
	return fmt.Sprintf("address %s is %s, refused by the private-address policy: "+
		"if this target is trusted, allow it with --webhook-allow-cidr %s (or every private address with --webhook-allow-private)",
		e.Addr, e.Kind, netip.PrefixFrom(e.Addr, e.Addr.BitLen()))
}

type reservedRange struct {
	prefix netip.Prefix
	kind   string
}

// reserved lists the non-public ranges refused by default. IPv4-mapped IPv6
// addresses (::ffff:a.b.c.d) are unmapped before the lookup, and NAT64 and
// 6to4 addresses are checked for the IPv4 address they embed.
var reserved = func() []reservedRange {
	ranges := []struct{ cidr, kind string }{
		{"0.0.0.0/8", "unspecified (\"this network\")"},
		{"10.0.0.0/8", "private (RFC 1918)"},
		{"100.64.0.0/10", "shared carrier-grade NAT (RFC 6598)"},
		{"127.0.0.0/8", "loopback"},
		{"169.254.0.0/16", "link-local (cloud metadata lives here)"},
		{"172.16.0.0/12", "private (RFC 1918)"},
		{"192.0.0.0/24", "reserved for IETF protocol assignments"},
		{"192.168.0.0/16", "private (RFC 1918)"},
		{"198.18.0.0/15", "reserved for benchmarking"},
		{"224.0.0.0/4", "multicast"},
		{"240.0.0.0/4", "reserved (including broadcast)"},
		{"::/96", "unspecified, loopback or IPv4-compatible"},
		{"64:ff9b:1::/48", "local-use NAT64"},
		{"100::/64", "discard-only"},
		{"fc00::/7", "private (unique local)"},
		{"fe80::/10", "link-local"},
		{"fec0::/10", "site-local"},
		{"ff00::/8", "multicast"},
	}
	out := make([]reservedRange, len(ranges))
	for i, r := range ranges {
		out[i] = reservedRange{netip.MustParsePrefix(r.cidr), r.kind}
	}
	return out
}()

var (
	nat64   = netip.MustParsePrefix("64:ff9b::/96")
	sixToF4 = netip.MustParsePrefix("2002::/16")
)

// reservedKind returns the kind of reserved range addr is in, or "" for a
// public address.
func reservedKind(addr netip.Addr) string {
	addr = addr.Unmap()
	if !addr.IsValid() {
		return "invalid"
	}
	for _, r := range reserved {
		if r.prefix.Contains(addr) {
			return r.kind
		}
	}
	if addr.Is6() {
		b := addr.As16()
		var embedded netip.Addr
		switch {
		case nat64.Contains(addr):
			embedded = netip.AddrFrom4([4]byte(b[12:16]))
		case sixToF4.Contains(addr):
			embedded = netip.AddrFrom4([4]byte(b[2:6]))
		}
		if embedded.IsValid() {
			if kind := reservedKind(embedded); kind != "" {
				return fmt.Sprintf("the IPv6 form of %s, which is %s", embedded, kind)
			}
		}
	}
	return ""
}

// policy decides which addresses a Deliverer may connect to.
type policy struct {
	allowPrivate bool
	allow        []netip.Prefix
}

// check returns a *RefusedError when addr may not be connected to.
func (p policy) check(addr netip.Addr) error {
	addr = addr.Unmap()
	if p.allowPrivate {
		return nil
	}
	for _, prefix := range p.allow {
		if prefix.Contains(addr) {
			return nil
		}
	}
	if kind := reservedKind(addr); kind != "" {
		return &RefusedError{Addr: addr, Kind: kind}
	}
	return nil
}

// control is a net.Dialer Control function: it runs for every connection
// attempt, on the address the socket is about to connect to, after DNS
// resolution. Checking there rather than when the URL is saved, or before a
// separate lookup, leaves no window for DNS rebinding.
func (p policy) control(network, address string, _ syscall.RawConn) error {
	if network != "tcp4" && network != "tcp6" {
		return fmt.Errorf("webhook connection over %s to %s refused: only TCP is used", network, address)
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("webhook connection to %q refused: not an IP address and port", address)
	}
	return p.check(ap.Addr())
}
