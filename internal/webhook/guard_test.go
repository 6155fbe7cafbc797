package webhook

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestReservedAddresses(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		addr string
		kind string // "" for public
	}{
		{"127.0.0.1", "loopback"},
		{"127.255.0.9", "loopback"},
		{"10.1.2.3", "private (RFC 1918)"},
		{"172.16.0.1", "private (RFC 1918)"},
		{"172.31.255.255", "private (RFC 1918)"},
		{"192.168.1.1", "private (RFC 1918)"},
		{"169.254.169.254", "link-local (cloud metadata lives here)"},
		{"100.64.0.1", "shared carrier-grade NAT (RFC 6598)"},
		{"0.0.0.0", `unspecified ("this network")`},
		{"0.1.2.3", `unspecified ("this network")`},
		{"255.255.255.255", "reserved (including broadcast)"},
		{"224.0.0.1", "multicast"},
		{"::1", "unspecified, loopback or IPv4-compatible"},
		{"::", "unspecified, loopback or IPv4-compatible"},
		{"fe80::1", "link-local"},
		{"fc00::1", "private (unique local)"},
		{"fd12:3456::1", "private (unique local)"},
		{"ff02::1", "multicast"},
		{"::ffff:127.0.0.1", "loopback"},
		{"::ffff:169.254.169.254", "link-local (cloud metadata lives here)"},
		{"::ffff:10.0.0.1", "private (RFC 1918)"},
		{"64:ff9b::a9fe:a9fe", "the IPv6 form of 169.254.169.254, which is link-local (cloud metadata lives here)"},
		{"2002:7f00:1::", "the IPv6 form of 127.0.0.1, which is loopback"},
		{"8.8.8.8", ""},
		{"172.32.0.1", ""},
		{"100.128.0.1", ""},
		{"2606:4700:4700::1111", ""},
		{"::ffff:8.8.8.8", ""},
		{"64:ff9b::808:808", ""},
	} {
		require.Equal(t, tc.kind, reservedKind(netip.MustParseAddr(tc.addr)), tc.addr)
	}
}

func TestPolicy(t *testing.T) {
	t.Parallel()
	metadata := netip.MustParseAddr("169.254.169.254")
	public := netip.MustParseAddr("8.8.8.8")

	var refused *RefusedError
	require.ErrorAs(t, policy{}.check(metadata), &refused)
	require.Equal(t, metadata, refused.Addr)
	require.NoError(t, policy{}.check(public))
	require.NoError(t, policy{allowPrivate: true}.check(metadata))

	allow := policy{allow: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}}
	require.NoError(t, allow.check(netip.MustParseAddr("10.1.2.3")))
	require.NoError(t, allow.check(netip.MustParseAddr("::ffff:10.1.2.3")), "IPv4-mapped forms match IPv4 ranges")
	require.Error(t, allow.check(netip.MustParseAddr("10.2.0.1")))

	require.NoError(t, policy{}.control("tcp4", "8.8.8.8:443", nil))
	require.ErrorAs(t, policy{}.control("tcp6", "[::ffff:127.0.0.1]:80", nil), &refused)
	require.ErrorContains(t, policy{}.control("udp4", "8.8.8.8:53", nil), "only TCP")
	require.ErrorContains(t, policy{}.control("tcp4", "example.com:80", nil), "not an IP address")
}
