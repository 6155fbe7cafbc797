package web_test

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/notified/notified/internal/web"
)

// addrSeeds are --http-addr values: loopback in every spelling Go reads,
// addresses that only look local, every interface, names, and nonsense.
var addrSeeds = []string{
	"127.0.0.1:8080", "127.1.2.3:8080", "localhost:8080", "[::1]:8080", "[::ffff:127.0.0.1]:8080",
	"[0:0:0:0:0:0:0:1]:8080", "[::1%lo]:8080", "[fe80::1%eth0]:8080",
	":8080", "0.0.0.0:8080", "[::]:8080", "192.168.1.10:8080", "[::ffff:10.0.0.1]:8080",
	"LOCALHOST:8080", "localhost.:8080", "localhost.example.com:8080", "127.0.0.1.example.com:8080",
	"0127.0.0.1:8080", "127.1:8080", "0x7f.0.0.1:8080", "2130706433:8080",
	"127.0.0.1", "localhost", "nonsense", "", ":", "[::1]", "[::1:8080", "127.0.0.1:8080:9090",
	"[[::1]]:8080", "localhost:http", "localhost:99999", "127.0.0.1:0",
	"evil\n127.0.0.1:8080", "127.0.0.1 :8080",
}

func FuzzCheckAddr(f *testing.F) {
	for _, a := range addrSeeds {
		f.Add(a, false, false)
	}
	f.Add("0.0.0.0:8080", true, false)
	f.Add(":8080", false, true)
	f.Fuzz(func(t *testing.T, addr string, withAuth, insecure bool) {
		err := web.CheckAddr(addr, withAuth, insecure)
		host, _, serr := net.SplitHostPort(addr)
		if serr != nil {
			require.Error(t, err, "%q is not host:port", addr)
			require.False(t, errors.Is(err, web.ErrInsecure))
			return
		}
		ip := net.ParseIP(host)
		loopback := host == "localhost" || ip != nil && ip.IsLoopback()
		if withAuth || insecure || loopback {
			require.NoError(t, err, "%q auth=%v insecure=%v", addr, withAuth, insecure)
		} else {
			require.ErrorIs(t, err, web.ErrInsecure, "%q", addr)
		}
		if err == nil && !withAuth && !insecure && host != "localhost" {
			// Served without credentials: the host is a loopback address
			// in the stricter netip reading too.
			a, perr := netip.ParseAddr(host)
			require.NoError(t, perr, "%q served without credentials, host %q", addr, host)
			require.True(t, a.Unmap().IsLoopback(), "%q served without credentials", addr)
		}
		if a, perr := netip.ParseAddr(host); perr == nil && a.Zone() == "" && a.Unmap().IsLoopback() {
			require.NoError(t, err, "loopback %q refused", addr)
		}
	})
}

// TestCheckAddrLoopbackListens listens on every seed address CheckAddr lets
// through without credentials, on a free port: the socket is bound to a
// loopback address and nothing else.
func TestCheckAddrLoopbackListens(t *testing.T) {
	t.Parallel()
	tried := 0
	for _, addr := range addrSeeds {
		if web.CheckAddr(addr, false, false) != nil {
			continue
		}
		host, _, err := net.SplitHostPort(addr)
		require.NoError(t, err)
		ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			if strings.Contains(host, ":") {
				t.Logf("%s: %v (no IPv6 here?)", addr, err)
				continue
			}
			require.NoError(t, err, addr)
		}
		got := ln.Addr().(*net.TCPAddr).IP
		_ = ln.Close()
		require.True(t, got.IsLoopback(), "%s listens on %s", addr, got)
		tried++
	}
	require.GreaterOrEqual(t, tried, 3)
}
