package web_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/notified/notified/bridge"
	"github.com/notified/notified/internal/testdb"
	"github.com/notified/notified/internal/web"
)

// send makes one request to ts with the Host header host, basic auth when
// user is not empty, and the headers hdr; it does not follow redirects.
func send(t *testing.T, ts *httptest.Server, method, path, host, user string, hdr map[string]string, body string) response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, ts.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Host = host
	if user != "" {
		req.SetBasicAuth(user, "s3cret")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	client := ts.Client()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	client.Timeout = 30 * time.Second
	resp, err := client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return response{code: resp.StatusCode, header: resp.Header, body: string(b)}
}

// jobState is the state of the River job id.
func (tb *testBundle) jobState(t *testing.T, id int64) string {
	t.Helper()
	var state string
	require.NoError(t, tb.db.Pool.QueryRow(context.Background(),
		"SELECT state::text FROM "+tb.db.Schema+".river_job WHERE id = $1", id).Scan(&state))
	return state
}

// crossSite are the headers a browser sends with a request that a page of
// another site makes, here as a "simple" request that needs no preflight.
var crossSite = map[string]string{
	"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site", "Content-Type": "text/plain",
}

// TestHostAndOriginChecks serves the UI as `run --http-addr 127.0.0.1:8080
// --ui-allowed-host ...` does, next to the ops endpoints, and sends it
// requests for every kind of Host header and origin. The requests that
// must be refused come first, against one job, which must stay available;
// the ones that must be let through then cancel another.
func TestHostAndOriginChecks(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ev := tb.dispatchEvent(t)
	victim, cancelled := ev.jobs["send_receipt"], ev.jobs["update_stock"]

	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ui, err := web.New(ctx, web.Options{
		Pool: tb.db.Pool, Events: tb.cfg, User: "admin", Password: "s3cret", Logger: tb.log,
		Addr:                "127.0.0.1:8080",
		AllowedHosts:        []string{"Notified.Example.COM.", "proxy.example:8443", "secure.example:443", "[FD00::5]"},
		AllowedHostsSetting: "--ui-allowed-host",
	})
	require.NoError(t, err)
	b, err := bridge.New(context.Background(), tb.db.Pool, tb.cfg) // for /readyz; not run
	require.NoError(t, err)
	mux := web.Ops(b, prometheus.NewRegistry())
	mux.Handle("/", ui)
	ts := serve(t, mux)

	cancelBody := func(id int64) string { return fmt.Sprintf(`{"ids":["%d"]}`, id) }
	const (
		ok        = http.StatusOK
		forbidden = http.StatusForbidden // a cross-origin change
		refused   = 0                    // 403 too, for a host name the UI does not answer to
	)
	type request struct {
		name, method, path, host, user string
		hdr                            map[string]string
		body                           string
		want                           int    // a status, or refused
		says                           string // in the body
	}
	getEvent := func(name, host string, want int) request {
		return request{name: name, method: http.MethodGet, path: "/events/42", host: host, user: "admin", want: want}
	}

	hosts := []request{
		getEvent("listen address", "127.0.0.1:8080", ok),
		getEvent("listen host on another port (a forwarded port)", "127.0.0.1:18080", ok),
		getEvent("listen host without port", "127.0.0.1", ok),
		getEvent("localhost", "localhost:8080", ok),
		getEvent("localhost in capitals with a final dot", "LocalHost.:8080", ok),
		getEvent("IPv6 loopback", "[::1]:8080", ok),
		getEvent("IPv6 loopback written long", "[0:0:0:0:0:0:0:1]:8080", ok),
		getEvent("IPv4-mapped loopback", "[::ffff:127.0.0.1]:8080", ok),
		getEvent("allowed name in another case on a port", "NOTIFIED.example.com:443", ok),
		getEvent("allowed name without port", "notified.example.com", ok),
		getEvent("allowed name:port", "proxy.example:8443", ok),
		getEvent("allowed name:port on another port", "proxy.example:9000", refused),
		getEvent("allowed name:port, Host without port", "proxy.example", refused),
		getEvent("allowed name:443, Host without port", "secure.example", ok),
		getEvent("allowed name:443 on port 80", "secure.example:80", refused),
		getEvent("allowed IPv6 address written otherwise", "[fd00:0:0::5]:8080", ok),
		getEvent("unbracketed IPv6 address with port", "fd00::5:8080", refused),
		getEvent("unclosed bracket", "[::1:8080", refused),
		getEvent("name that resolves to loopback", "127.0.0.1.nip.io:8080", refused),
		getEvent("subdomain of an allowed name", "www.notified.example.com", refused),
		getEvent("name that ends like an allowed one", "evil-notified.example.com", refused),
		getEvent("pod IP", "10.1.2.3:8080", refused),
		{name: "foreign name", method: http.MethodGet, path: "/events/42", host: "evil.example:8080", user: "admin",
			want: refused, says: `(Host: "evil.example:8080"). If that is a name it is reached by, through a reverse proxy say, add "evil.example" to --ui-allowed-host`},
		{name: "foreign IPv6 address", method: http.MethodGet, path: "/events/42", host: "[2001:DB8::1]:8080", user: "admin",
			want: refused, says: `add "[2001:db8::1]" to --ui-allowed-host`},
	}
	for _, path := range []string{"/", "/riverui/", "/riverui/api/jobs?state=available", "/api/events/42", "/api/status", "/no-such-page"} {
		// Refused before authentication: no password prompt either.
		hosts = append(hosts, request{name: "foreign name " + path, method: http.MethodGet, path: path,
			host: "evil.example:8080", want: refused, says: "--ui-allowed-host"})
	}
	// The ops endpoints answer any name: probes and scrapers use the pod IP.
	for _, path := range []string{"/healthz", "/metrics"} {
		hosts = append(hosts, request{name: "pod IP " + path, method: http.MethodGet, path: path, host: "10.1.2.3:8080", want: ok})
	}
	hosts = append(hosts, request{name: "pod IP /readyz", method: http.MethodGet, path: "/readyz", host: "10.1.2.3:8080",
		want: http.StatusServiceUnavailable, says: `"reasons"`})

	changes := []request{
		{name: "cross-site cancel", method: http.MethodPost, path: "/riverui/api/jobs/cancel", host: "127.0.0.1:8080", user: "admin",
			hdr: crossSite, body: cancelBody(victim), want: forbidden, says: "cross-origin request detected from Sec-Fetch-Site header"},
		{name: "cross-site delete", method: http.MethodPost, path: "/riverui/api/jobs/delete", host: "127.0.0.1:8080", user: "admin",
			hdr: crossSite, body: cancelBody(victim), want: forbidden},
		{name: "cross-site retry", method: http.MethodPost, path: "/riverui/api/jobs/retry", host: "127.0.0.1:8080", user: "admin",
			hdr: crossSite, body: cancelBody(victim), want: forbidden},
		{name: "cross-site queue pause", method: http.MethodPut, path: "/riverui/api/queues/default/pause", host: "127.0.0.1:8080", user: "admin",
			hdr: crossSite, want: forbidden},
		{name: "cross-site post to an event", method: http.MethodPost, path: "/api/events/42", host: "127.0.0.1:8080", user: "admin",
			hdr: crossSite, want: forbidden},
		{name: "same-site cancel", method: http.MethodPost, path: "/riverui/api/jobs/cancel", host: "127.0.0.1:8080", user: "admin",
			hdr: map[string]string{"Origin": "http://other.localhost:8080", "Sec-Fetch-Site": "same-site"}, body: cancelBody(victim), want: forbidden},
		{name: "cross-origin cancel from a browser without Sec-Fetch-Site", method: http.MethodPost, path: "/riverui/api/jobs/cancel",
			host: "127.0.0.1:8080", user: "admin", hdr: map[string]string{"Origin": "https://evil.example"}, body: cancelBody(victim),
			want: forbidden, says: "Origin does not match Host"},
		{name: "cancel from a sandboxed page", method: http.MethodPost, path: "/riverui/api/jobs/cancel", host: "127.0.0.1:8080", user: "admin",
			hdr: map[string]string{"Origin": "null"}, body: cancelBody(victim), want: forbidden},
		{name: "same-origin cancel by a page for a foreign name (DNS rebinding)", method: http.MethodPost, path: "/riverui/api/jobs/cancel",
			host: "evil.example:8080", user: "admin", hdr: map[string]string{"Origin": "http://evil.example:8080", "Sec-Fetch-Site": "same-origin"},
			body: cancelBody(victim), want: refused},
		{name: "same-origin cancel without credentials", method: http.MethodPost, path: "/riverui/api/jobs/cancel", host: "127.0.0.1:8080",
			hdr: map[string]string{"Origin": "http://127.0.0.1:8080", "Sec-Fetch-Site": "same-origin"}, body: cancelBody(victim),
			want: http.StatusUnauthorized},
		// Reading is left to the browser's same-origin policy.
		{name: "cross-site read", method: http.MethodGet, path: "/api/events/42", host: "127.0.0.1:8080", user: "admin",
			hdr: crossSite, want: ok, says: `"order_placed"`},

		{name: "same-origin cancel", method: http.MethodPost, path: "/riverui/api/jobs/cancel", host: "127.0.0.1:8080", user: "admin",
			hdr:  map[string]string{"Origin": "http://127.0.0.1:8080", "Sec-Fetch-Site": "same-origin", "Content-Type": "application/json"},
			body: cancelBody(cancelled), want: ok},
		{name: "cancel typed by the user", method: http.MethodPost, path: "/riverui/api/jobs/cancel", host: "localhost:8080", user: "admin",
			hdr: map[string]string{"Sec-Fetch-Site": "none"}, body: cancelBody(cancelled), want: ok},
		{name: "same-origin cancel from a browser without Sec-Fetch-Site", method: http.MethodPost, path: "/riverui/api/jobs/cancel",
			host: "127.0.0.1:8080", user: "admin", hdr: map[string]string{"Origin": "http://127.0.0.1:8080"}, body: cancelBody(cancelled), want: ok},
		{name: "cancel without browser headers (curl)", method: http.MethodPost, path: "/riverui/api/jobs/cancel", host: "127.0.0.1:8080",
			user: "admin", body: cancelBody(cancelled), want: ok},
		{name: "same-origin cancel through a proxy that keeps the Host", method: http.MethodPost, path: "/riverui/api/jobs/cancel",
			host: "notified.example.com", user: "admin",
			hdr: map[string]string{"Origin": "https://notified.example.com", "Sec-Fetch-Site": "same-origin"}, body: cancelBody(cancelled), want: ok},
		{name: "same-origin method not allowed", method: http.MethodPost, path: "/api/events/42", host: "127.0.0.1:8080", user: "admin",
			hdr: map[string]string{"Origin": "http://127.0.0.1:8080", "Sec-Fetch-Site": "same-origin"}, want: http.StatusMethodNotAllowed},
	}

	for _, rq := range append(hosts, changes...) {
		t.Run(rq.name, func(t *testing.T) {
			r := send(t, ts, rq.method, rq.path, rq.host, rq.user, rq.hdr, rq.body)
			want := rq.want
			if want == refused {
				want = http.StatusForbidden
			}
			require.Equal(t, want, r.code, "%s %s Host: %s: %s", rq.method, rq.path, rq.host, r.body)
			require.Contains(t, r.body, rq.says)
			if rq.want == refused {
				require.Contains(t, r.body, "403 forbidden: this notified web UI does not answer to the host name")
				require.Empty(t, r.header.Get("WWW-Authenticate"), "refused before authentication")
				for _, name := range []string{"notified.example.com", "proxy.example", "secure.example", "fd00::5", "127.0.0.1", "localhost"} {
					if !strings.Contains(strings.ToLower(rq.host), name) {
						require.NotContains(t, r.body, name, "the refusal tells a rebinding page no allowed name")
					}
				}
			}
			if rq.want == forbidden {
				require.Contains(t, r.body, "403 forbidden: cross-origin request")
			}
			if rq.method != http.MethodGet {
				require.Equal(t, "available", tb.jobState(t, victim), "after %s", rq.name)
			}
		})
	}
	require.Equal(t, "cancelled", tb.jobState(t, cancelled))

	// HTTP/1.0 lets a request come without a Host header.
	w := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/events/42", nil)
	req.Host = ""
	req.SetBasicAuth("admin", "s3cret")
	ui.ServeHTTP(w, req)
	require.Equal(t, forbidden, w.Code, w.Body.String())
	require.Contains(t, w.Body.String(), "answers only requests with a Host header naming it")
}

// TestHostDefaults checks the names the UI answers to for each kind of
// listen address, without AllowedHosts.
func TestHostDefaults(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	loopback := []string{"localhost:8080", "127.0.0.1:8080", "[::1]:8080", "localhost", "127.0.0.1:9999"}
	for _, c := range []struct {
		addr        string
		allowed     []string
		refused     []string
		settingSays string
	}{
		{addr: "", allowed: loopback, refused: []string{"10.0.0.5:8080", "evil.example"}, settingSays: "web.Options.AllowedHosts"},
		{addr: "127.0.0.1:8080", allowed: loopback, refused: []string{"10.0.0.5:8080", "0.0.0.0:8080", "evil.example"}},
		{addr: "localhost:8080", allowed: loopback, refused: []string{"10.0.0.5:8080", "localhost.example"}},
		{addr: "[::1]:8080", allowed: loopback, refused: []string{"[fe80::1]:8080"}},
		{addr: ":8080", allowed: loopback, refused: []string{"10.0.0.5:8080", "bridge:8080", "evil.example"}},
		{addr: "0.0.0.0:8080", allowed: append([]string{"0.0.0.0:8080"}, loopback...), refused: []string{"10.0.0.5:8080"}},
		{addr: "[::]:8080", allowed: append([]string{"[::]:8080"}, loopback...), refused: []string{"10.0.0.5:8080"}},
		{addr: "10.0.0.5:8080", allowed: []string{"10.0.0.5:8080", "10.0.0.5:80", "10.0.0.5"},
			refused: []string{"localhost:8080", "127.0.0.1:8080", "[::1]:8080", "10.0.0.6:8080"}},
		{addr: "Bridge.Internal:8080", allowed: []string{"bridge.internal:8080", "BRIDGE.internal."},
			refused: []string{"localhost:8080", "internal:8080"}},
	} {
		t.Run(c.addr, func(t *testing.T) {
			t.Parallel()
			ui, err := web.New(t.Context(), web.Options{Pool: db.Pool, Events: bridge.Config{Schema: db.Schema}, Addr: c.addr,
				Logger: testLogger(t)})
			require.NoError(t, err)
			for _, h := range c.allowed {
				require.Equal(t, http.StatusOK, hostStatus(ui, h, nil), "Host: %s", h)
			}
			for _, h := range c.refused {
				require.Equal(t, http.StatusForbidden, hostStatus(ui, h, nil), "Host: %s", h)
			}
			if c.settingSays != "" {
				w := httptest.NewRecorder()
				req := httptest.NewRequest(http.MethodGet, "/", nil)
				req.Host = c.refused[0]
				ui.ServeHTTP(w, req)
				require.Contains(t, w.Body.String(), c.settingSays)
			}
		})
	}
}

// hostStatus is the status the UI answers a GET of / with for Host: host.
func hostStatus(h http.Handler, host string, hdr map[string]string) int {
	w := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Host = host
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	h.ServeHTTP(w, req)
	return w.Code
}

func TestAllowedHostsRefusedWhenNotNames(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ entry, says string }{
		{"", `"" is not a host name, IP address or host:port`},
		{"https://notified.example.com/", `"https://notified.example.com/" is not a host name, IP address or host:port: give the name alone, without scheme or path`},
		{"notified.example.com/riverui", `"notified.example.com/riverui" is not a host name, IP address or host:port: give the name alone, without scheme or path`},
		{"*.example.com", `"*.example.com" is not a host name`},
		{"admin@notified.example.com", "is not a host name"},
		{"notified example", "is not a host name"},
		{"notified.example.com:http", `port "http" is not a number`},
		{"notified.example.com:0", "is not a number from 1 to 65535"},
		{"notified.example.com:65536", "is not a number from 1 to 65535"},
		{"notified.example.com:", "is not a host name"},
		{"[::1", "lacks the ]"},
		{"[::1]8080", `where a :port may be`},
		{"[notified.example.com]:80", "is not an IPv6 address"},
		{"::1:8080:x", "neither an IP address nor host:port"},
		{".", "is not a host name"},
		{"a..b", "is not a host name"},
		{strings.Repeat("a", 64) + ".example", "is not a host name"},
	} {
		t.Run(c.entry, func(t *testing.T) {
			t.Parallel()
			err := web.CheckAllowedHosts([]string{"ok.example", c.entry})
			require.Error(t, err)
			require.Contains(t, err.Error(), c.says)
			require.NotContains(t, err.Error(), "--", "the library names no flag")
		})
	}
	for _, entry := range []string{
		"notified.example.com", "Notified.Example.COM.", "notified.example.com:8443", "10.0.0.5", "10.0.0.5:8080",
		"[::1]", "[::1]:8080", "::1", "fd00::5", "[fe80::1%25eth0]:80", "bridge", "my_host.internal", "xn--bcher-kva.example",
	} {
		require.NoError(t, web.CheckAllowedHosts([]string{entry}), entry)
	}

	// New names the field and the entry.
	db := testdb.New(t)
	_, err := web.New(t.Context(), web.Options{Pool: db.Pool, Events: bridge.Config{Schema: db.Schema},
		AllowedHosts: []string{"ok.example", "https://notified.example.com"}})
	require.Error(t, err)
	require.Equal(t, `web UI: Options.AllowedHosts[1]: "https://notified.example.com" is not a host name, IP address or host:port: `+
		`give the name alone, without scheme or path, e.g. notified.example.com`, err.Error())
	_, err = web.New(t.Context(), web.Options{Pool: db.Pool, Events: bridge.Config{Schema: db.Schema}, Addr: "8080"})
	require.Error(t, err)
	require.Contains(t, err.Error(), `web UI: Options.Addr "8080" is not host:port or :port`)
}

// TestServeRefusesCrossOriginChanges serves a handler that changes
// something on POST through Serve: a cross-origin POST never reaches it,
// whatever handler Serve was given.
func TestServeRefusesCrossOriginChanges(t *testing.T) {
	t.Parallel()
	var changes atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("POST /change", func(w http.ResponseWriter, r *http.Request) {
		changes.Add(1)
		_, _ = io.WriteString(w, "changed")
	})
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan net.Addr, 1)
	served := make(chan error, 1)
	go func() { served <- web.Serve(ctx, "127.0.0.1:0", mux, testLogger(t), func(a net.Addr) { addrc <- a }) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-served)
	})
	var url string
	select {
	case a := <-addrc:
		url = "http://" + a.String() + "/change"
	case err := <-served:
		t.Fatalf("Serve returned before it was ready: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not report its address within 10s")
	}

	post := func(hdr map[string]string) (int, string) {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, strings.NewReader("x"))
		require.NoError(t, err)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(b)
	}
	code, body := post(crossSite)
	require.Equal(t, http.StatusForbidden, code, body)
	require.Contains(t, body, "403 forbidden: cross-origin request detected from Sec-Fetch-Site header")
	code, body = post(map[string]string{"Origin": "https://evil.example"})
	require.Equal(t, http.StatusForbidden, code, body)
	require.Zero(t, changes.Load(), "a refused request reached the handler")

	code, body = post(nil)
	require.Equal(t, http.StatusOK, code, body)
	code, body = post(map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": strings.TrimSuffix(url, "/change")})
	require.Equal(t, http.StatusOK, code, body)
	require.Equal(t, int64(2), changes.Load())
}
