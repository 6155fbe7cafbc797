package webhook

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}

// captured is one request as a test server received it.
type captured struct {
	method string
	header http.Header
	body   []byte
}

// testBundle is a receiver that records what it gets and answers with answer.
type testBundle struct {
	server   *httptest.Server
	requests chan captured
	count    atomic.Int64
}

func setup(t *testing.T, answer http.HandlerFunc) *testBundle {
	t.Helper()
	b := &testBundle{requests: make(chan captured, 16)}
	b.server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.count.Add(1)
		body, _ := io.ReadAll(r.Body)
		b.requests <- captured{method: r.Method, header: r.Header.Clone(), body: body}
		answer(w, r)
	}))
	t.Cleanup(b.server.Close)
	return b
}

func newDeliverer(t *testing.T, opts Options) *Deliverer {
	t.Helper()
	d, err := New(opts)
	require.NoError(t, err)
	t.Cleanup(d.CloseIdleConnections)
	return d
}

func answerStatus(code int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(code)
		_, _ = io.WriteString(w, body)
	}
}

func TestDeliverSendsASignedPOST(t *testing.T) {
	t.Parallel()
	b := setup(t, answerStatus(http.StatusOK, "thanks"))
	now := time.Unix(1_800_000_000, 0)
	d := newDeliverer(t, Options{AllowCIDRs: loopback, Now: func() time.Time { return now }})
	body := []byte(`{"event":"order.paid","id":42}`)

	res := d.Deliver(context.Background(), Request{URL: b.server.URL + "/hooks/orders", Secret: vectorSecret, MsgID: "evt_42", Body: body, Route: "orders"})
	require.NoError(t, res.Err)
	require.Equal(t, Delivered, res.Outcome)
	require.Equal(t, http.StatusOK, res.Status)
	require.Equal(t, Class2xx, res.Class)
	require.Equal(t, "thanks", res.Excerpt)
	require.Positive(t, res.Duration)

	got := <-b.requests
	require.Equal(t, http.MethodPost, got.method)
	require.Equal(t, body, got.body)
	require.Equal(t, "application/json", got.header.Get("Content-Type"))
	require.Equal(t, DefaultUserAgent, got.header.Get("User-Agent"))
	require.Equal(t, "evt_42", got.header.Get("webhook-id"))
	require.Equal(t, "1800000000", got.header.Get("webhook-timestamp"))
	require.NoError(t, verifyAt(vectorSecret, got.header, got.body, 5*time.Minute, now))

	// The signature is the HMAC computed independently of Sign.
	key, err := ParseSecret(vectorSecret)
	require.NoError(t, err)
	require.Contains(t, strings.Fields(got.header.Get("webhook-signature")),
		"v1,"+base64.StdEncoding.EncodeToString(mac(key, "evt_42", now.Unix(), body)))
}

func TestDeliverWithoutSecretSendsNoSignature(t *testing.T) {
	t.Parallel()
	b := setup(t, answerStatus(http.StatusNoContent, ""))
	d := newDeliverer(t, Options{AllowCIDRs: loopback, UserAgent: "custom/2"})

	res := d.Deliver(context.Background(), Request{URL: b.server.URL, MsgID: "evt_1", Body: []byte(`{}`)})
	require.Equal(t, Delivered, res.Outcome, res.Err)
	got := <-b.requests
	require.Empty(t, got.header.Values("webhook-signature"))
	require.Equal(t, "evt_1", got.header.Get("webhook-id"))
	require.Equal(t, "custom/2", got.header.Get("User-Agent"))
}

func TestDeliverRefusesBadRequestsWithoutSending(t *testing.T) {
	t.Parallel()
	b := setup(t, answerStatus(http.StatusOK, ""))
	d := newDeliverer(t, Options{AllowCIDRs: loopback})
	for _, tc := range []struct {
		name    string
		req     Request
		errPart string
	}{
		{"invalid secret", Request{URL: b.server.URL, Secret: "whsec_%%%", MsgID: "m"}, "not valid base64"},
		{"no message id", Request{URL: b.server.URL, Secret: vectorSecret}, "MsgID is empty"},
		{"invalid URL", Request{URL: "ftp://example.com/", MsgID: "m"}, "scheme must be http or https"},
	} {
		res := d.Deliver(context.Background(), tc.req)
		require.Equal(t, Permanent, res.Outcome, tc.name)
		require.Equal(t, ClassError, res.Class, tc.name)
		require.ErrorContains(t, res.Err, tc.errPart, tc.name)
	}
	require.Zero(t, b.count.Load(), "nothing may be sent")
}

func TestDeliverReadsABoundedExcerptOfALongBody(t *testing.T) {
	t.Parallel()
	const total = 10 << 20
	type outcome struct {
		written int
		err     error
	}
	done := make(chan outcome, 1)
	b := setup(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		chunk := []byte(strings.Repeat("é", 16<<10)) // two bytes a character
		written := 0
		var err error
		for written < total && err == nil {
			var n int
			n, err = w.Write(chunk)
			written += n
			w.(http.Flusher).Flush()
		}
		if err == nil {
			<-r.Context().Done() // a reader that wanted it all would now wait for the timeout
			err = r.Context().Err()
		}
		done <- outcome{written, err}
	})
	d := newDeliverer(t, Options{AllowCIDRs: loopback, Timeout: 20 * time.Second})

	res := d.Deliver(context.Background(), Request{URL: b.server.URL, MsgID: "m", Body: []byte(`{}`)})
	require.Equal(t, Delivered, res.Outcome, res.Err)
	require.LessOrEqual(t, len(res.Excerpt), ExcerptBytes)
	require.GreaterOrEqual(t, len(res.Excerpt), ExcerptBytes-1)
	require.True(t, utf8.ValidString(res.Excerpt))
	require.Equal(t, strings.Repeat("é", ExcerptBytes/2), res.Excerpt)
	require.Less(t, res.Duration, 10*time.Second, "Deliver must not wait for the rest of the body")

	select {
	case o := <-done:
		require.Error(t, o.err, "the client must close the connection instead of reading on")
		require.Less(t, o.written, total, "the server must not have sent the whole body")
	case <-time.After(15 * time.Second):
		t.Fatal("the server is still sending 15s after Deliver returned")
	}
}

func TestExcerptCutsAtACharacterBoundary(t *testing.T) {
	t.Parallel()
	body := []byte(strings.Repeat("a", ExcerptBytes-1) + "€tail") // € is 3 bytes and straddles the cut
	require.Equal(t, strings.Repeat("a", ExcerptBytes-1), excerpt(body))
	require.Equal(t, "ok\uFFFD", excerpt([]byte("ok\xff")))
	require.Equal(t, "", excerpt(nil))
}

func TestDeliverRetriesOn5xx408And429(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name       string
		code       int
		retryAfter string
		want       time.Duration
		class      string
	}{
		{"500", http.StatusInternalServerError, "", 0, Class5xx},
		{"503 with seconds", http.StatusServiceUnavailable, "7", 7 * time.Second, Class5xx},
		{"429 with seconds", http.StatusTooManyRequests, "7", 7 * time.Second, Class4xx},
		{"429 with an HTTP date", http.StatusTooManyRequests, now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, Class4xx},
		{"429 with a past date", http.StatusTooManyRequests, now.Add(-time.Hour).Format(http.TimeFormat), 0, Class4xx},
		{"429 asking for a week", http.StatusTooManyRequests, "604800", MaxRetryAfter, Class4xx},
		{"503 with garbage", http.StatusServiceUnavailable, "soon", 0, Class5xx},
		{"408", http.StatusRequestTimeout, "", 0, Class4xx},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, func(w http.ResponseWriter, _ *http.Request) {
				if tc.retryAfter != "" {
					w.Header().Set("Retry-After", tc.retryAfter)
				}
				w.WriteHeader(tc.code)
				_, _ = io.WriteString(w, "busy")
			})
			d := newDeliverer(t, Options{AllowCIDRs: loopback, Now: func() time.Time { return now }})
			res := d.Deliver(context.Background(), Request{URL: b.server.URL, MsgID: "m", Body: []byte(`{}`)})
			require.Equal(t, Retry, res.Outcome)
			require.Equal(t, tc.code, res.Status)
			require.Equal(t, tc.want, res.RetryAfter)
			require.Equal(t, tc.class, res.Class)
			require.Equal(t, "busy", res.Excerpt)
			require.ErrorContains(t, res.Err, "answered "+strconv.Itoa(tc.code))
			require.ErrorContains(t, res.Err, "will retry")
		})
	}
}

func TestDeliverGivesUpOnOther4xx(t *testing.T) {
	t.Parallel()
	for _, code := range []int{http.StatusBadRequest, http.StatusUnauthorized, http.StatusNotFound, http.StatusGone} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			t.Parallel()
			b := setup(t, func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Retry-After", "7") // ignored: the answer is final
				w.WriteHeader(code)
				_, _ = io.WriteString(w, `{"error":"no such hook"}`)
			})
			d := newDeliverer(t, Options{AllowCIDRs: loopback})
			res := d.Deliver(context.Background(), Request{URL: b.server.URL + "/secret-token-path", MsgID: "m", Body: []byte(`{}`)})
			require.Equal(t, Permanent, res.Outcome)
			require.Equal(t, Class4xx, res.Class)
			require.Equal(t, code, res.Status)
			require.Zero(t, res.RetryAfter)
			require.Equal(t, `{"error":"no such hook"}`, res.Excerpt)
			require.ErrorContains(t, res.Err, fmt.Sprintf("answered %d %s", code, http.StatusText(code)))
			require.NotContains(t, res.Err.Error(), "secret-token-path", "the error names the target by scheme and host only")
		})
	}
}

func TestDeliverDoesNotFollowRedirects(t *testing.T) {
	t.Parallel()
	final := setup(t, answerStatus(http.StatusOK, ""))
	b := setup(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, final.server.URL+"/final", http.StatusMovedPermanently)
	})
	d := newDeliverer(t, Options{AllowCIDRs: loopback})

	res := d.Deliver(context.Background(), Request{URL: b.server.URL, MsgID: "m", Body: []byte(`{}`)})
	require.Equal(t, Permanent, res.Outcome)
	require.Equal(t, http.StatusMovedPermanently, res.Status)
	require.Equal(t, Class3xx, res.Class)
	require.ErrorContains(t, res.Err, fmt.Sprintf("Location %q", final.server.URL+"/final"))
	require.ErrorContains(t, res.Err, "point the route at the final URL")
	require.EqualValues(t, 1, b.count.Load())
	require.Zero(t, final.count.Load(), "the redirect target must receive nothing")
}

func TestDeliverTimesOut(t *testing.T) {
	t.Parallel()
	b := setup(t, func(_ http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // answers only when the client has gone
	})
	const timeout = 300 * time.Millisecond
	d := newDeliverer(t, Options{AllowCIDRs: loopback, Timeout: timeout})

	res := d.Deliver(context.Background(), Request{URL: b.server.URL, MsgID: "m", Body: []byte(`{}`)})
	require.Equal(t, Retry, res.Outcome)
	require.Equal(t, ClassTimeout, res.Class)
	require.Zero(t, res.Status)
	require.ErrorContains(t, res.Err, "no answer within 300ms")
	require.GreaterOrEqual(t, res.Duration, timeout)
	require.Less(t, res.Duration, timeout+2*time.Second, "Deliver must give up at about the timeout")
}

func TestDeliverTimesOutReadingAStalledBody(t *testing.T) {
	t.Parallel()
	b := setup(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, "partial")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	const timeout = 300 * time.Millisecond
	d := newDeliverer(t, Options{AllowCIDRs: loopback, Timeout: timeout})

	res := d.Deliver(context.Background(), Request{URL: b.server.URL, MsgID: "m", Body: []byte(`{}`)})
	require.Equal(t, Delivered, res.Outcome, "the 2xx status is the receiver's acknowledgement")
	require.Equal(t, "partial", res.Excerpt)
	require.GreaterOrEqual(t, res.Duration, timeout)
	require.Less(t, res.Duration, timeout+2*time.Second, "the timeout covers reading the body")
}

func TestDeliverRetriesWhenTheConnectionIsRefused(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	d := newDeliverer(t, Options{AllowCIDRs: loopback})

	res := d.Deliver(context.Background(), Request{URL: "http://" + addr + "/hook", MsgID: "m", Body: []byte(`{}`)})
	require.Equal(t, Retry, res.Outcome)
	require.Equal(t, ClassError, res.Class)
	require.ErrorContains(t, res.Err, "connection refused")
	require.NotContains(t, res.Err.Error(), "/hook")
}

func TestDeliverRetriesOnDNSFailure(t *testing.T) {
	t.Parallel()
	d := newDeliverer(t, Options{Timeout: 5 * time.Second})
	res := d.Deliver(context.Background(), Request{URL: "http://no-such-host.invalid/hook", MsgID: "m", Body: []byte(`{}`)})
	require.Equal(t, Retry, res.Outcome)
	require.Contains(t, []string{ClassError, ClassTimeout}, res.Class)
	require.ErrorContains(t, res.Err, "no-such-host.invalid")
}

func TestDeliverRetriesOnTLSErrors(t *testing.T) {
	t.Parallel()
	var count atomic.Int64
	server := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		count.Add(1)
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(server.Close)

	untrusting := newDeliverer(t, Options{AllowCIDRs: loopback})
	res := untrusting.Deliver(context.Background(), Request{URL: server.URL, MsgID: "m", Body: []byte(`{}`)})
	require.Equal(t, Retry, res.Outcome)
	require.Equal(t, ClassError, res.Class)
	require.ErrorContains(t, res.Err, "certificate")
	require.Zero(t, count.Load())

	roots := x509.NewCertPool()
	roots.AddCert(server.Certificate())
	trusting := newDeliverer(t, Options{AllowCIDRs: loopback, RootCAs: roots})
	res = trusting.Deliver(context.Background(), Request{URL: server.URL, MsgID: "m", Body: []byte(`{}`)})
	require.Equal(t, Delivered, res.Outcome, res.Err)
	require.EqualValues(t, 1, count.Load())
}

func TestDeliverStopsWhenTheCallerCancels(t *testing.T) {
	t.Parallel()
	b := setup(t, func(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	d := newDeliverer(t, Options{AllowCIDRs: loopback})
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-b.requests // the request arrived: now cancel it
		cancel()
	}()
	res := d.Deliver(ctx, Request{URL: b.server.URL, MsgID: "m", Body: []byte(`{}`)})
	require.Equal(t, Retry, res.Outcome)
	require.ErrorContains(t, res.Err, "canceled")
	require.Less(t, res.Duration, DefaultTimeout)
}

func TestDeliverStopsAtTheCallersDeadline(t *testing.T) {
	t.Parallel()
	b := setup(t, func(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	d := newDeliverer(t, Options{AllowCIDRs: loopback})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()

	res := d.Deliver(ctx, Request{URL: b.server.URL, MsgID: "m", Body: []byte(`{}`)})
	require.Equal(t, Retry, res.Outcome)
	require.Equal(t, ClassTimeout, res.Class)
	require.ErrorContains(t, res.Err, "delivery stopped before an answer: context deadline exceeded")
	require.Less(t, res.Duration, DefaultTimeout)
}

func TestDeliverReusesConnectionsUnlessTheAnswerIsTooLong(t *testing.T) {
	t.Parallel()
	var conns atomic.Int64
	server := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if r.URL.Path == "/long" {
			_, _ = io.WriteString(w, strings.Repeat("x", 4096))
		}
	}))
	server.Config.ConnState = func(_ net.Conn, state http.ConnState) {
		if state == http.StateNew {
			conns.Add(1)
		}
	}
	server.Start()
	t.Cleanup(server.Close)
	d := newDeliverer(t, Options{AllowCIDRs: loopback, MaxResponseBytes: 1024})
	send := func(path string) {
		t.Helper()
		res := d.Deliver(context.Background(), Request{URL: server.URL + path, MsgID: "m", Body: []byte(`{}`)})
		require.Equal(t, Delivered, res.Outcome, res.Err)
	}

	send("/short")
	send("/short")
	require.EqualValues(t, 1, conns.Load(), "a fully read answer leaves its connection for the next delivery")
	send("/long") // on the same connection, read only up to MaxResponseBytes, then dropped
	send("/short")
	require.EqualValues(t, 2, conns.Load(), "an answer longer than MaxResponseBytes must close its connection")
}

func TestDeliverRefusesPrivateTargetsByDefault(t *testing.T) {
	t.Parallel()
	b := setup(t, answerStatus(http.StatusOK, ""))
	port := b.server.Listener.Addr().(*net.TCPAddr).Port

	for _, target := range []string{
		b.server.URL, // 127.0.0.1
		fmt.Sprintf("http://localhost:%d/", port),
		fmt.Sprintf("http://[::ffff:127.0.0.1]:%d/", port),
		fmt.Sprintf("http://0.0.0.0:%d/", port),
	} {
		for _, opts := range []Options{{}, {AllowCIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}} {
			d := newDeliverer(t, opts)
			res := d.Deliver(context.Background(), Request{URL: target, MsgID: "m", Body: []byte(`{}`)})
			require.Equal(t, Permanent, res.Outcome, target)
			require.Equal(t, ClassRefused, res.Class, target)
			var refused *RefusedError
			require.ErrorAs(t, res.Err, &refused, target)
			require.ErrorContains(t, res.Err, "--webhook-allow-private", target)
			require.ErrorContains(t, res.Err, "--webhook-allow-cidr", target)
		}
	}
	require.Zero(t, b.count.Load(), "a refused target receives nothing")

	for _, opts := range []Options{{AllowPrivate: true}, {AllowCIDRs: loopback}, {AllowCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}} {
		d := newDeliverer(t, opts)
		res := d.Deliver(context.Background(), Request{URL: fmt.Sprintf("http://localhost:%d/", port), MsgID: "m", Body: []byte(`{}`)})
		require.Equal(t, Delivered, res.Outcome, res.Err)
	}
}

func TestDelivererUsesNoProxy(t *testing.T) {
	t.Parallel()
	// A proxy would be the address dialed and checked, not the target. The
	// transport must not read HTTP_PROXY and friends: loopback targets are
	// never proxied by them, so a test through a proxy server could not tell.
	d := newDeliverer(t, Options{})
	require.Nil(t, d.transport.Proxy)
	require.Nil(t, d.transport.DialTLSContext, "every connection goes through the checked dialer")
	require.NotNil(t, d.transport.DialContext)
}

func TestNewChecksOptions(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		opts    Options
		errPart string
	}{
		{Options{Timeout: -time.Second}, "Timeout -1s is negative"},
		{Options{MaxResponseBytes: -1}, "MaxResponseBytes -1 is negative"},
		{Options{MaxIdleConnsPerHost: -1}, "MaxIdleConnsPerHost -1 is negative"},
		{Options{AllowCIDRs: []netip.Prefix{{}}}, "AllowCIDRs holds an invalid prefix"},
	} {
		_, err := New(tc.opts)
		require.ErrorContains(t, err, tc.errPart)
	}
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		value string
		want  time.Duration
	}{
		{"", 0},
		{"0", 0},
		{" 120 ", 2 * time.Minute},
		{"-5", 0},
		{"1.5", 0},
		{"86401", MaxRetryAfter},
		{"99999999999999999999999", MaxRetryAfter},
		{"Sun, 01 Mar 2026 12:00:30 GMT", 30 * time.Second},
		{"Sunday, 01-Mar-26 12:00:30 GMT", 30 * time.Second},
		{"Sun, 08 Mar 2026 12:00:00 GMT", MaxRetryAfter},
		{"Sun, 01 Mar 2026 11:00:00 GMT", 0},
		{"tomorrow", 0},
	} {
		require.Equal(t, tc.want, parseRetryAfter(tc.value, now), "%q", tc.value)
	}
}

func TestOutcomeString(t *testing.T) {
	t.Parallel()
	require.Equal(t, "delivered", Delivered.String())
	require.Equal(t, "retry", Retry.String())
	require.Equal(t, "permanent", Permanent.String())
	require.Equal(t, "Outcome(0)", Outcome(0).String())
}
