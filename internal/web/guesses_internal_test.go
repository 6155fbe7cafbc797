package web

import (
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestGuessLimiterWindow(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := newGuessLimiter()
	l.now = func() time.Time { return now }
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "192.0.2.7:5555"
	other := httptest.NewRequest("GET", "/", nil)
	other.RemoteAddr = "192.0.2.8:5555"

	for range maxGuesses - 1 {
		l.failed(r)
	}
	require.Zero(t, l.blocked(r), "one guess left")
	l.failed(r)
	require.Equal(t, guessWindow, l.blocked(r), "blocked for the window begun by the first guess")
	require.Zero(t, l.blocked(other), "another address is not")

	now = now.Add(guessWindow - time.Minute)
	require.Equal(t, time.Minute, l.blocked(r))
	now = now.Add(time.Minute)
	require.Zero(t, l.blocked(r), "the window is over")
	l.failed(r)
	require.Zero(t, l.blocked(r), "a new window, with one guess")
}

func TestGuessLimiterKeys(t *testing.T) {
	t.Parallel()
	key := func(remote string) string {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = remote
		return clientKey(r)
	}
	require.Equal(t, "192.0.2.7", key("192.0.2.7:1234"))
	require.Equal(t, key("[2001:db8:1:2:aaaa::1]:1"), key("[2001:db8:1:2:bbbb::9]:2"), "one IPv6 /64")
	require.NotEqual(t, key("[2001:db8:1:2::1]:1"), key("[2001:db8:1:3::1]:1"))
	require.Equal(t, "2001:db8:1:2::/64", key("[2001:db8:1:2::1]:1"))
	require.Equal(t, "not-an-address", key("not-an-address"), "an odd RemoteAddr is its own key")
}

func TestGuessLimiterBounded(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := newGuessLimiter()
	l.now = func() time.Time { return now }
	first := httptest.NewRequest("GET", "/", nil)
	first.RemoteAddr = "10.255.255.255:1"
	for range maxGuesses {
		l.failed(first)
	}
	for i := range maxGuessAddrs + 5 {
		now = now.Add(time.Millisecond)
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = fmt.Sprintf("10.0.%d.%d:1", i/250, i%250)
		l.failed(r)
		require.LessOrEqual(t, len(l.byAddr), maxGuessAddrs)
	}
	require.Zero(t, l.blocked(first), "the oldest record made room")
}
