package web_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/notified/notified/history"
)

// startTimeout bounds Chromium's start, and browserTimeout what the test
// then does in it.
const (
	startTimeout   = 15 * time.Second
	browserTimeout = 40 * time.Second
)

// newBrowser starts a headless Chromium that sends headers with every request
// and is closed when the test ends. On failure, a screenshot of the page is
// saved first.
func newBrowser(t *testing.T, headers network.Headers) context.Context {
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
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	browserCtx, cancelBrowser := chromedp.NewContext(allocCtx, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() {
		cancelBrowser() // closes the browser
		cancelAlloc()   // waits for its process to exit
	})
	screenshotOnFailure(browserCtx, t)

	// The first call starts the browser and binds its life to the context
	// it gets: browserCtx, so that the screenshot can still be taken after
	// the test's own deadline.
	timer := time.AfterFunc(startTimeout, cancelBrowser)
	_, err = chromedp.Call(browserCtx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: headers})
	require.True(t, timer.Stop(), "Chromium did not start within %s", startTimeout)
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
