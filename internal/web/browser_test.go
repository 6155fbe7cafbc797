package web_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/notified/notified/history"
	"github.com/notified/notified/internal/testdb"
	"github.com/notified/notified/internal/web"
)

// startTimeout bounds Chromium's start, and browserTimeout what the test
// then does in it.
const (
	startTimeout   = 15 * time.Second
	browserTimeout = 40 * time.Second
)

// browserStarts lets one browser start at a time.
var browserStarts sync.Mutex

// newBrowser starts a headless Chromium that sends headers with every request
// and is closed when the test ends, with flags added to its command line. On
// failure, a screenshot of the page is saved first.
func newBrowser(t *testing.T, headers network.Headers, flags ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		msg := fmt.Sprintf("this test needs Chromium, and chromium is not on PATH (%v): install it with `apt-get install chromium`", err)
		// CI installs it and must run the test; elsewhere it may be skipped.
		if strings.Contains(os.Getenv("NOTIFIED_TEST_REQUIRE"), "chromium") {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox, // the tests run as root
		chromedp.DisableGPU,
		chromedp.WindowSize(1280, 900),
	)
	opts = append(opts, flags...)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	browserCtx, cancelBrowser := chromedp.NewContext(allocCtx, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() {
		cancelBrowser() // closes the browser
		cancelAlloc()   // waits for its process to exit
	})
	screenshotOnFailure(browserCtx, t)

	// The first call starts the browser and binds its life to the context
	// it gets: browserCtx, so that the screenshot can still be taken after
	// the test's own deadline. One browser starts at a time: two starting
	// together on a small machine can each miss the deadline.
	browserStarts.Lock()
	timer := time.AfterFunc(startTimeout, cancelBrowser)
	_, err = chromedp.Call(browserCtx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: headers})
	started := timer.Stop()
	browserStarts.Unlock()
	require.True(t, started, "Chromium did not start within %s", startTimeout)
	require.NoError(t, err, "start Chromium and set the request headers")

	ctx, cancel := context.WithTimeout(browserCtx, browserTimeout)
	t.Cleanup(cancel)
	return ctx
}

// screenshotOnFailure saves what the browser shows when the test fails, in
// the test's artifact directory (kept with `go test -artifacts`), and logs
// the file's path. It must be registered after the cleanup that closes the
// browser, so that it runs before it.
func screenshotOnFailure(browserCtx context.Context, t *testing.T) {
	t.Helper()
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		// browserCtx outlives the test's own deadline, so a test that timed
		// out still gets its screenshot.
		ctx, cancel := context.WithTimeout(browserCtx, 5*time.Second)
		defer cancel()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Logf("no screenshot of the failure: %v", err)
			return
		}
		if loc, err := chromedp.Run(ctx, chromedp.Location()); err == nil {
			t.Logf("the browser was at %s", loc)
		}
		file := filepath.Join(t.ArtifactDir(), "failure.png")
		if err := os.WriteFile(file, png, 0o644); err != nil {
			t.Logf("save the screenshot of the failure: %v", err)
			return
		}
		t.Logf("screenshot of the failure: %s (kept after the test with go test -artifacts)", file)
	})
}

// navigate loads url in the browser.
func navigate(ctx context.Context, t *testing.T, url string) {
	t.Helper()
	resp, err := chromedp.Run(ctx, chromedp.NavigateResponse(url))
	require.NoError(t, err, "navigate to %s", url)
	require.Equal(t, int64(200), resp.Status, "status of %s", url)
}

// waitText waits until the text of the first element that xpath selects
// contains every one of want, and returns that text. It fails with the text
// the element showed last.
func waitText(ctx context.Context, t *testing.T, xpath string, want ...string) string {
	t.Helper()
	text := fmt.Sprintf(`((xpath) => {
		const el = document.evaluate(xpath, document, null, XPathResult.FIRST_ORDERED_NODE_TYPE, null).singleNodeValue;
		return el === null ? null : el.innerText;
	})(%s)`, mustJSON(t, xpath))
	_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](
		fmt.Sprintf(`((t, want) => t !== null && want.every(s => t.includes(s)))(%s, %s)`, text, mustJSON(t, want)),
		chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(30*time.Second)))
	got, _ := chromedp.Run(ctx, chromedp.Evaluate[*string](text))
	shown := "(no such element)"
	if got != nil {
		shown = *got
	}
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	require.NoError(t, err, "%s on %s never showed all of %q; it shows:\n%s", xpath, loc, want, shown)
	return shown
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

// metadataXPath is the Metadata field of River UI's job page.
const metadataXPath = `//dt[normalize-space()="Metadata"]/following-sibling::dd`

func TestBrowserShowsBridgeJob(t *testing.T) {
	t.Parallel()
	begin := time.Now()
	const (
		eventID = "73519"
		kind    = "send_invoice_pdf"
	)
	// The browser first, so that a machine without Chromium fails at once.
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte("admin:s3cret"))
	ctx := newBrowser(t, network.Headers{"Authorization": auth})

	tb := setup(t)
	tb.route(t, "invoice_issued", kind)
	tb.startBridge(t)
	tb.insertEvent(t, 73519, "invoice_issued")
	tb.waitDispatched(t, eventID)
	ids := tb.jobIDs(t, kind)
	require.Len(t, ids, 1)
	jobID := strconv.FormatInt(ids[0], 10)
	jobPath := "/riverui/jobs/" + jobID

	ts := serve(t, tb.newServer(t, "admin", "s3cret"))

	// (a) River UI lists the job among the available ones (its jobs page
	// shows the running jobs unless told which state), linked to its page.
	navigate(ctx, t, ts.URL+"/riverui/jobs?state=available")
	waitText(ctx, t, "//body", kind)
	link, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`a[href="`+jobPath+`"]`)))
	require.NoError(t, err)
	require.Equal(t, kind, link)

	// (b) The job's page shows its kind and, in its metadata (once
	// expanded), the event it came from.
	navigate(ctx, t, ts.URL+jobPath)
	waitText(ctx, t, "//main", kind, "Metadata")
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(metadataXPath+`//div[@role="button"][@aria-expanded="false"]`)))
	meta := waitText(ctx, t, metadataXPath, `"notified"`, `"event_id"`, `"`+eventID+`"`, `"event_name"`, `"invoice_issued"`)
	require.Contains(t, meta, tb.db.Channel)

	// (c) The event's page lists the job in its jobs table, linked to the
	// job's page in River UI.
	navigate(ctx, t, ts.URL+"/events/"+eventID)
	handler, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#jobs tr.job td:nth-child(2)`)))
	require.NoError(t, err)
	require.Equal(t, kind, handler)
	href, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS(`#jobs tr.job a`), "href"))
	require.NoError(t, err)
	require.Equal(t, jobPath, href.Value)
	resp, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(`#jobs tr.job a`)))
	require.NoError(t, err, "follow the link to the job")
	require.Equal(t, int64(200), resp.Status)
	waitText(ctx, t, "//main", kind, "Metadata")
	loc, err := chromedp.Run(ctx, chromedp.Location())
	require.NoError(t, err)
	require.Equal(t, ts.URL+jobPath, loc)

	// (d) The page's own fetch of the JSON history, sent with the same
	// credentials, lists the handler.
	body, err := chromedp.Run(ctx, chromedp.Evaluate[string](
		`fetch("/api/events/`+eventID+`").then(r => r.ok ? r.text() : Promise.reject(new Error(r.status + " " + r.statusText)))`,
		chromedp.EvalAwaitPromise))
	require.NoError(t, err)
	var ev history.Event
	require.NoError(t, json.Unmarshal([]byte(body), &ev), body)
	require.Equal(t, eventID, ev.ID)
	require.Len(t, ev.Jobs, 1, body)
	require.Equal(t, kind, ev.Jobs[0].Handler)
	require.Equal(t, ids[0], ev.Jobs[0].ID)

	t.Logf("browser test took %s", time.Since(begin).Round(time.Millisecond))
}

// seenRequest is a request a server answered, and the status it answered.
type seenRequest struct {
	method, host, path string
	site, origin       string // the Sec-Fetch-Site and Origin headers
	code               int
}

// requestLog serves h and records each request with its status, when the
// status is written: before the client can see the answer.
type requestLog struct {
	h    http.Handler
	mu   sync.Mutex
	seen []seenRequest
}

func (l *requestLog) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	l.h.ServeHTTP(&statusWriter{ResponseWriter: w, record: func(code int) {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.seen = append(l.seen, seenRequest{r.Method, r.Host, r.URL.Path, r.Header.Get("Sec-Fetch-Site"), r.Header.Get("Origin"), code})
	}}, r)
}

// posts returns the recorded requests other than GET and HEAD to path.
func (l *requestLog) posts(path string) []seenRequest {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []seenRequest
	for _, s := range l.seen {
		if s.path == path && s.method != http.MethodGet && s.method != http.MethodHead {
			out = append(out, s)
		}
	}
	return out
}

type statusWriter struct {
	http.ResponseWriter
	record  func(int)
	written bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.written {
		w.written = true
		w.record(code)
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.written {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// cancelButton is River UI's button that cancels the job its page shows.
const cancelButton = `//main//button[normalize-space()="Cancel"]`

// TestBrowserRefusesChangesFromOtherSites runs the attacks the web UI must
// resist in a browser that sends the operator's basic-auth credentials with
// every request, as a browser that saved them does: a page of another site
// posting to River UI's API (by fetch and by a form), and a page whose name
// resolves to the UI's address (DNS rebinding) reading an event and posting.
// Then River UI's own Cancel button still works, at the UI's address and
// under a name given in AllowedHosts (as behind a reverse proxy).
func TestBrowserRefusesChangesFromOtherSites(t *testing.T) {
	t.Parallel()
	begin := time.Now()
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte("admin:s3cret"))
	// evil.test stands for an attacker's name that resolves to this
	// machine, notified.test for the name a proxy serves the UI under.
	ctx := newBrowser(t, network.Headers{"Authorization": auth},
		chromedp.Flag("host-resolver-rules", "MAP evil.test 127.0.0.1, MAP notified.test 127.0.0.1"))

	tb := setup(t)
	tb.route(t, "order_placed", "notify_warehouse")
	ev := tb.dispatchEvent(t)
	warehouse := tb.jobIDs(t, "notify_warehouse")
	require.Len(t, warehouse, 1)
	victim, local, proxied := ev.jobs["send_receipt"], ev.jobs["update_stock"], warehouse[0]

	sctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ui, err := web.New(sctx, web.Options{Pool: tb.db.Pool, Events: tb.cfg, User: "admin", Password: "s3cret", Logger: tb.log,
		AllowedHosts: []string{"notified.test"}, AllowedHostsSetting: "--ui-allowed-host"})
	require.NoError(t, err)
	log := &requestLog{h: ui}
	ts := serve(t, log)
	port := ts.Listener.Addr().(*net.TCPAddr).Port
	cancelURL := ts.URL + "/riverui/api/jobs/cancel"

	// The attacker's page: a form whose text/plain body is River UI's JSON.
	attacker := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><title>a page of another site</title>
<form method="POST" action="%s" enctype="text/plain"><input name='{"ids":["%d"],"x":"' value='"}'></form>`,
			html.EscapeString(cancelURL), victim)
	}))
	attackerOrigin := fmt.Sprintf("http://evil.test:%d", attacker.Listener.Addr().(*net.TCPAddr).Port)

	requireVictimAvailable := func(when string) {
		t.Helper()
		require.Equal(t, "available", tb.jobState(t, victim), when)
	}

	// (a) From the other site, fetch posts to cancel, delete and retry the
	// job. A no-cors fetch settles once the answer has come, whatever it is.
	navigate(ctx, t, attackerOrigin+"/")
	for _, path := range []string{"/riverui/api/jobs/cancel", "/riverui/api/jobs/delete", "/riverui/api/jobs/retry"} {
		_, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](fmt.Sprintf(
			`fetch(%s, {method: "POST", mode: "no-cors", credentials: "include", headers: {"Content-Type": "text/plain"}, body: %s}).then(() => undefined)`,
			mustJSON(t, ts.URL+path), mustJSON(t, fmt.Sprintf(`{"ids":["%d"]}`, victim))), chromedp.EvalAwaitPromise))
		require.NoError(t, err, "fetch %s from the other site", path)
		got := log.posts(path)
		require.Len(t, got, 1, "requests to %s", path)
		require.Equal(t, seenRequest{http.MethodPost, "127.0.0.1:" + strconv.Itoa(port), path, "cross-site", attackerOrigin, http.StatusForbidden}, got[0])
		requireVictimAvailable("after the other site's fetch to " + path)
	}

	// (b) The form, submitted, shows the refusal.
	resp, err := chromedp.RunResponse(ctx, chromedp.Evaluate[chromedp.Void](`document.forms[0].submit()`))
	require.NoError(t, err, "submit the other site's form")
	require.Equal(t, int64(http.StatusForbidden), resp.Status)
	waitText(ctx, t, "//body", "403 forbidden: cross-origin request")
	require.Len(t, log.posts("/riverui/api/jobs/cancel"), 2)
	requireVictimAvailable("after the other site's form")

	// (c) A page at evil.test on the UI's port, as after DNS rebinding: it
	// is refused, and so are its own requests, which the browser lets it
	// read.
	rebound := fmt.Sprintf("http://evil.test:%d", port)
	resp, err = chromedp.RunResponse(ctx, chromedp.Navigate(rebound+"/events/"+ev.id))
	require.NoError(t, err)
	require.Equal(t, int64(http.StatusForbidden), resp.Status)
	waitText(ctx, t, "//body", `add "evil.test" to --ui-allowed-host`)
	answers, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](fmt.Sprintf(`Promise.all([
		fetch("/api/events/%s").then(r => r.status + " " + r.headers.get("Content-Type")),
		fetch("/riverui/api/jobs/cancel", {method: "POST", body: %s}).then(r => r.status + " " + r.headers.get("Content-Type")),
	])`, ev.id, mustJSON(t, fmt.Sprintf(`{"ids":["%d"]}`, victim))), chromedp.EvalAwaitPromise))
	require.NoError(t, err)
	require.Equal(t, []string{"403 text/plain; charset=utf-8", "403 text/plain; charset=utf-8"}, answers)
	// The browser sends no Sec-Fetch-Site to an http:// name other than
	// localhost, and the Origin it sends is the Host: only the Host check
	// stands between this page and the job.
	got := log.posts("/riverui/api/jobs/cancel")
	require.Len(t, got, 3)
	require.Equal(t, seenRequest{http.MethodPost, "evil.test:" + strconv.Itoa(port), "/riverui/api/jobs/cancel", "", rebound, http.StatusForbidden}, got[2])
	requireVictimAvailable("after the rebinding page's post")

	// (d) River UI's Cancel button, on the UI's own pages, under the
	// allowed name and at the UI's address.
	for _, c := range []struct {
		base string
		job  int64
		site string // the Sec-Fetch-Site the browser sends
	}{
		{fmt.Sprintf("http://notified.test:%d", port), proxied, ""},
		{ts.URL, local, "same-origin"},
	} {
		navigate(ctx, t, fmt.Sprintf("%s/riverui/jobs/%d", c.base, c.job))
		waitText(ctx, t, "//main", "Metadata")
		before := len(log.posts("/riverui/api/jobs/cancel"))
		require.NoError(t, chromedp.Do(ctx, chromedp.Click(cancelButton)), "click Cancel on %s", c.base)
		var got []seenRequest
		testdb.WaitFor(t, 20*time.Second, func() (bool, string) {
			got = log.posts("/riverui/api/jobs/cancel")
			return len(got) > before, fmt.Sprintf("no cancel request from %s after the click: %v", c.base, got)
		})
		require.Len(t, got, before+1)
		require.Equal(t, seenRequest{http.MethodPost, strings.TrimPrefix(c.base, "http://"), "/riverui/api/jobs/cancel", c.site, c.base, http.StatusOK}, got[before])
		// River UI answers once its transaction has committed.
		require.Equal(t, "cancelled", tb.jobState(t, c.job), "job cancelled at %s", c.base)
	}
	requireVictimAvailable("at the end")

	t.Logf("browser test took %s", time.Since(begin).Round(time.Millisecond))
}
