package webhook

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Defaults of [Options].
const (
	DefaultTimeout             = 10 * time.Second
	DefaultMaxResponseBytes    = 64 << 10
	DefaultUserAgent           = "notified-webhook/1"
	DefaultMaxIdleConnsPerHost = 8
)

// ExcerptBytes is the most of a response body kept in [Result.Excerpt].
const ExcerptBytes = 1024

// MaxRetryAfter caps [Result.RetryAfter]: a receiver cannot push its next
// attempt further away than this.
const MaxRetryAfter = 24 * time.Hour

// Options configure a [Deliverer]. The zero value is usable: every field has
// a default.
type Options struct {
	// Timeout bounds each delivery as a whole: connecting, TLS, sending the
	// body, waiting for the answer and reading the response body. Default
	// DefaultTimeout (10s).
	Timeout time.Duration
	// MaxResponseBytes is the most of a response body read. A longer body is
	// not read further: its connection is closed instead of being reused.
	// Default DefaultMaxResponseBytes (64 KiB).
	MaxResponseBytes int64
	// AllowPrivate lets deliveries connect to any address, including
	// loopback, private, link-local and other non-public ones. Off by default:
	// such targets are refused (see RefusedError).
	AllowPrivate bool
	// AllowCIDRs are address ranges allowed even though they are not public,
	// e.g. 10.1.2.0/24 for an internal receiver. Public addresses are always
	// allowed.
	AllowCIDRs []netip.Prefix
	// UserAgent is the user-agent header sent. Default DefaultUserAgent.
	UserAgent string
	// MaxIdleConnsPerHost is the number of idle keep-alive connections kept
	// per receiver host. Default DefaultMaxIdleConnsPerHost.
	MaxIdleConnsPerHost int
	// RootCAs are the certificate authorities trusted for https targets;
	// nil means the system's. TLS 1.2 is the minimum version in any case.
	RootCAs *x509.CertPool
	// Now returns the current time, used for webhook-timestamp and to read
	// a Retry-After date. Default time.Now.
	Now func() time.Time
	// Metrics, when not nil, counts every delivery. Register it yourself.
	Metrics *Metrics
}

// Outcome says what the caller should do after a delivery.
type Outcome int

const (
	// Delivered means the receiver answered 2xx: the event is delivered.
	Delivered Outcome = iota + 1
	// Retry means the delivery failed in a way that may pass later: a
	// timeout, a connection, DNS or TLS failure, or a 408, 429 or 5xx answer.
	Retry
	// Permanent means trying again will fail the same way until someone
	// changes the route or the receiver: a redirect, another 4xx answer, a
	// target refused by the address policy, an invalid URL or secret.
	Permanent
)

// String returns "delivered", "retry" or "permanent".
func (o Outcome) String() string {
	switch o {
	case Delivered:
		return "delivered"
	case Retry:
		return "retry"
	case Permanent:
		return "permanent"
	}
	return "Outcome(" + strconv.Itoa(int(o)) + ")"
}

// Request is one delivery to make.
type Request struct {
	// URL is the target, checked with ValidateURL.
	URL string
	// Secret is the Standard Webhooks signing secret ("whsec_<base64>").
	// When it is empty no webhook-signature header is sent: the receiver
	// cannot then tell the delivery from a forgery, so only leave it empty
	// for receivers that authenticate requests some other way.
	Secret string
	// MsgID is the webhook-id: the same on every attempt to deliver one
	// event, so the receiver can deduplicate. Required.
	MsgID string
	// Body is sent as given, as application/json.
	Body []byte
	// Route labels the delivery's metrics. Use the configured route's name,
	// never a value taken from the event, to keep the metrics' cardinality
	// bounded.
	Route string
}

// Result is what happened to a delivery.
type Result struct {
	// Status is the HTTP status answered, 0 when there was no answer.
	Status int
	// Excerpt is the start of the response body, at most ExcerptBytes, made
	// valid UTF-8. It is the receiver's text: sanitize it before printing it
	// to a terminal.
	Excerpt string
	// Duration is the time from sending the request to the end of reading
	// the response, or to the failure.
	Duration time.Duration
	// Outcome says whether the event is delivered, should be tried again, or
	// cannot be delivered as configured.
	Outcome Outcome
	// RetryAfter is the wait the receiver asked for in a Retry-After header
	// (seconds or an HTTP date) with a 408, 429 or 5xx answer, at most
	// MaxRetryAfter; 0 when it asked for none.
	RetryAfter time.Duration
	// Class is the class label counted in notified_webhook_requests_total.
	Class string
	// Err says what went wrong, on one line, naming the target only by its
	// scheme and host (paths and queries can hold tokens) and never the
	// secret. Nil when Delivered.
	Err error
}

// Deliverer sends webhooks. It is safe for concurrent use and keeps a pool of
// keep-alive connections; call CloseIdleConnections when done with it.
type Deliverer struct {
	client           *http.Client
	transport        *http.Transport
	timeout          time.Duration
	maxResponseBytes int64
	userAgent        string
	now              func() time.Time
	metrics          *Metrics
}

// New returns a Deliverer configured by opts, after checking them.
func New(opts Options) (*Deliverer, error) {
	if opts.Timeout < 0 {
		return nil, fmt.Errorf("Timeout %s is negative: give a positive duration, or 0 for the default %s", opts.Timeout, DefaultTimeout)
	}
	if opts.MaxResponseBytes < 0 {
		return nil, fmt.Errorf("MaxResponseBytes %d is negative: give a positive size, or 0 for the default %d", opts.MaxResponseBytes, DefaultMaxResponseBytes)
	}
	if opts.MaxIdleConnsPerHost < 0 {
		return nil, fmt.Errorf("MaxIdleConnsPerHost %d is negative: give a positive number, or 0 for the default %d", opts.MaxIdleConnsPerHost, DefaultMaxIdleConnsPerHost)
	}
	pol := policy{allowPrivate: opts.AllowPrivate}
	for _, p := range opts.AllowCIDRs {
		if !p.IsValid() {
			return nil, fmt.Errorf("AllowCIDRs holds an invalid prefix %q: give ranges such as 10.1.2.0/24 or fd00::/64", p)
		}
		pol.allow = append(pol.allow, p.Masked())
	}
	d := &Deliverer{
		timeout:          cmpOr(opts.Timeout, DefaultTimeout),
		maxResponseBytes: cmpOr(opts.MaxResponseBytes, DefaultMaxResponseBytes),
		userAgent:        cmpOr(opts.UserAgent, DefaultUserAgent),
		now:              opts.Now,
		metrics:          opts.Metrics,
	}
	if d.now == nil {
		d.now = time.Now
	}
	dialer := &net.Dialer{
		Timeout:   d.timeout,
		KeepAlive: 30 * time.Second,
		Control:   pol.control,
	}
	d.transport = &http.Transport{
		// Never a proxy from the environment: the address policy checks the
		// address dialed, which would be the proxy's.
		Proxy:                  nil,
		DialContext:            dialer.DialContext,
		ForceAttemptHTTP2:      true,
		TLSClientConfig:        &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: opts.RootCAs},
		TLSHandshakeTimeout:    min(d.timeout, 10*time.Second),
		MaxIdleConns:           100,
		MaxIdleConnsPerHost:    cmpOr(opts.MaxIdleConnsPerHost, DefaultMaxIdleConnsPerHost),
		IdleConnTimeout:        90 * time.Second,
		MaxResponseHeaderBytes: 64 << 10,
		// Read the body as sent, so MaxResponseBytes bounds what crosses the
		// network and a compressed answer cannot expand in memory.
		DisableCompression: true,
	}
	d.client = &http.Client{
		Transport: d.transport,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse // never follow: the 3xx is the answer
		},
	}
	return d, nil
}

func cmpOr[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// CloseIdleConnections closes the keep-alive connections not in use.
func (d *Deliverer) CloseIdleConnections() {
	d.transport.CloseIdleConnections()
}

// Deliver POSTs req.Body to req.URL with the Standard Webhooks headers and
// classifies what happened. It returns once the answer is read, or at the
// latest when Options.Timeout has passed or ctx is done. An answer whose
// status arrived counts by its status even if reading its body then failed
// or timed out.
func (d *Deliverer) Deliver(ctx context.Context, req Request) Result {
	res := d.deliver(ctx, req)
	d.metrics.observe(req.Route, res)
	return res
}

func (d *Deliverer) deliver(ctx context.Context, req Request) Result {
	if err := ValidateURL(req.URL); err != nil {
		return Result{Outcome: Permanent, Class: ClassError, Err: err}
	}
	u, err := url.Parse(req.URL)
	if err != nil { // cannot happen after ValidateURL
		return Result{Outcome: Permanent, Class: ClassError, Err: err}
	}
	target := u.Scheme + "://" + u.Host
	if req.MsgID == "" {
		return Result{Outcome: Permanent, Class: ClassError, Err: fmt.Errorf("webhook to %s: MsgID is empty: every delivery needs a webhook-id", target)}
	}
	ts := d.now()
	var signature string
	if req.Secret != "" {
		if signature, err = Sign(req.Secret, req.MsgID, ts, req.Body); err != nil {
			return Result{Outcome: Permanent, Class: ClassError, Err: fmt.Errorf("webhook to %s: %w", target, err)}
		}
	}

	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	httpReq, err := http.NewRequestWithContext(ctx, http.MethodPost, req.URL, bytes.NewReader(req.Body))
	if err != nil {
		return Result{Outcome: Permanent, Class: ClassError, Err: fmt.Errorf("webhook to %s: %w", target, unwrapURLError(err))}
	}
	h := httpReq.Header
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", d.userAgent)
	h.Set(HeaderID, req.MsgID)
	h.Set(HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	if signature != "" {
		h.Set(HeaderSignature, signature)
	}

	start := time.Now()
	resp, err := d.client.Do(httpReq)
	if err != nil {
		res := d.failure(parent, target, err)
		res.Duration = time.Since(start)
		return res
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, d.maxResponseBytes))
	// Closing a body that was not read to its end closes the connection
	// rather than draining the rest of it for reuse.
	resp.Body.Close()
	res := d.classify(target, resp, d.now())
	res.Duration = time.Since(start)
	res.Excerpt = excerpt(body)
	return res
}

// failure classifies a request that got no answer. parent is the caller's
// context, without the delivery's own timeout.
func (d *Deliverer) failure(parent context.Context, target string, err error) Result {
	var refused *RefusedError
	switch {
	case errors.As(err, &refused):
		return Result{Outcome: Permanent, Class: ClassRefused, Err: fmt.Errorf("webhook to %s: %w", target, refused)}
	case parent.Err() != nil:
		class := ClassError
		if errors.Is(parent.Err(), context.DeadlineExceeded) {
			class = ClassTimeout
		}
		return Result{Outcome: Retry, Class: class, Err: fmt.Errorf("webhook to %s: delivery stopped before an answer: %w", target, parent.Err())}
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		return Result{Outcome: Retry, Class: ClassTimeout,
			Err: fmt.Errorf("webhook to %s: no answer within %s (Timeout): the receiver is slow or unreachable", target, d.timeout)}
	}
	return Result{Outcome: Retry, Class: ClassError, Err: fmt.Errorf("webhook to %s: %w", target, oneLine(unwrapURLError(err)))}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// unwrapURLError drops the *url.Error around a client error: it repeats the
// whole URL, whose path or query may hold a token.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// classify maps an answer to an outcome.
func (d *Deliverer) classify(target string, resp *http.Response, now time.Time) Result {
	code := resp.StatusCode
	res := Result{Status: code}
	answered := fmt.Sprintf("webhook to %s answered %d %s", target, code, http.StatusText(code))
	switch {
	case code >= 200 && code <= 299:
		res.Outcome, res.Class = Delivered, Class2xx
	case code >= 300 && code <= 399:
		res.Outcome, res.Class = Permanent, Class3xx
		loc := resp.Header.Get("Location")
		if lu, err := url.Parse(loc); err == nil {
			loc = lu.Redacted()
		}
		res.Err = fmt.Errorf("%s to Location %q: redirects are not followed; point the route at the final URL", answered, loc)
	case code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || (code >= 500 && code <= 599):
		res.Outcome = Retry
		res.Class = Class4xx
		if code >= 500 {
			res.Class = Class5xx
		}
		res.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), now)
		if res.RetryAfter > 0 {
			res.Err = fmt.Errorf("%s: will retry, not before %s as its Retry-After asks", answered, res.RetryAfter)
		} else {
			res.Err = fmt.Errorf("%s: will retry", answered)
		}
	case code >= 400 && code <= 499:
		res.Outcome, res.Class = Permanent, Class4xx
		res.Err = fmt.Errorf("%s: the receiver refused the delivery; check the route's URL and the receiver's configuration (the response excerpt may say why)", answered)
	default:
		res.Outcome, res.Class = Permanent, ClassError
		res.Err = fmt.Errorf("%s, which is not a final answer to a webhook: check the receiver", answered)
	}
	return res
}

// parseRetryAfter reads a Retry-After value: delay seconds or an HTTP date.
// It returns 0 for none, a past date or a value it cannot read, and at most
// MaxRetryAfter.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseUint(v, 10, 64); err == nil || errors.Is(err, strconv.ErrRange) {
		if err != nil || secs > uint64(MaxRetryAfter/time.Second) {
			return MaxRetryAfter
		}
		return time.Duration(secs) * time.Second
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0
	}
	return min(max(t.Sub(now), 0), MaxRetryAfter)
}

// excerpt returns the first ExcerptBytes of body, cut at a character
// boundary, with invalid UTF-8 replaced.
func excerpt(body []byte) string {
	if len(body) > ExcerptBytes {
		n := ExcerptBytes
		for n > ExcerptBytes-utf8.UTFMax && !utf8.RuneStart(body[n]) {
			n--
		}
		body = body[:n]
	}
	return strings.ToValidUTF8(string(body), "\uFFFD")
}

// oneLine keeps an error's message on one line.
func oneLine(err error) error {
	msg := err.Error()
	if !strings.ContainsAny(msg, "\r\n") {
		return err
	}
	return errors.New(strings.Join(strings.Fields(msg), " "))
}
