package web_test

import (
	"context"
	"encoding/base64"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/notified/notified/internal/testdb"
)

// screenshot saves what the browser shows as docs/screenshots/name when
// NOTIFIED_UPDATE_SCREENSHOTS=1, for the documentation.
func screenshot(ctx context.Context, t *testing.T, name string) {
	t.Helper()
	if os.Getenv("NOTIFIED_UPDATE_SCREENSHOTS") != "1" {
		return
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join("..", "..", "docs", "screenshots", name), png, 0o644))
}

// count returns how many elements css selects.
func count(ctx context.Context, t *testing.T, css string) int {
	t.Helper()
	n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll(`+mustJSON(t, css)+`).length`))
	require.NoError(t, err)
	return n
}

// TestBrowserPages drives the events list, the status page and the failed
// page in Chromium, as an operator signed in with basic auth does: it
// filters the list, retries a dead letter from the failed page (filling in
// the reason), and follows a job back to its event.
func TestBrowserPages(t *testing.T) {
	t.Parallel()
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte("admin:s3cret"))
	ctx := newBrowser(t, network.Headers{"Authorization": auth}, chromedp.WindowSize(1280, 860))

	tb := setup(t)
	tb.route(t, "user_signed_up", "send_welcome")
	_, dead := tb.deadLetter(t) // event 42, order_placed, to send_receipt and update_stock
	for id, name := range map[int64]string{43: "user_signed_up", 44: "order_placed", 45: "user_signed_up", 46: "invoice_voided", 47: "order_placed"} {
		tb.insertEvent(t, id, name)
	}
	testdb.WaitFor(t, 20*time.Second, func() (bool, string) {
		n := testdb.Count(t, tb.db.Pool, `SELECT count(*) FROM `+tb.db.Schema+`.notified_dispatch`)
		return n == 6, strconv.Itoa(n) + " of 6 events recorded"
	})
	testdb.Exec(t, tb.db.Pool, `UPDATE `+tb.db.Schema+`.river_job SET state = 'completed', finalized_at = now(), attempt = 1, attempted_at = now()
		WHERE state = 'available' AND metadata->'notified'->>'event_id' IN ('43', '44')`)
	tb.insertDispatch(t, "1001", "user_signed_up", "missing")
	ts := serve(t, tb.newServer(t, "admin", "s3cret"))

	// The list, newest first, then filtered by outcome.
	navigate(ctx, t, ts.URL+"/events")
	waitText(ctx, t, `//table[@id="events"]`, "1001", "invoice_voided", "unrouted", "send_welcome")
	require.Equal(t, 7, count(ctx, t, "#events tr.event"))
	screenshot(ctx, t, "events.png")
	require.NoError(t, chromedp.Do(ctx, chromedp.SetValue(chromedp.CSS(`select[name="outcome"]`), "missing")))
	_, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(`#filters button[type="submit"]`)))
	require.NoError(t, err)
	waitText(ctx, t, `//table[@id="events"]`, "1001", "missing")
	require.Equal(t, 1, count(ctx, t, "#events tr.event"))
	loc, err := chromedp.Run(ctx, chromedp.Location())
	require.NoError(t, err)
	require.Contains(t, loc, "outcome=missing")

	// The status.
	navigate(ctx, t, ts.URL+"/status")
	waitText(ctx, t, "//main", "Backlog", "send_receipt", "failing", "SMTP said no", "alive")
	screenshot(ctx, t, "status.png")

	// The failed page: retry the dead letter, with a reason.
	navigate(ctx, t, ts.URL+"/failed")
	waitText(ctx, t, `//table[@id="dead"]`, "send_receipt", "SMTP said no", "Retry")
	waitText(ctx, t, `//table[@id="failed-events"]`, "1001", "missing")
	require.NoError(t, chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS(`#dead tr.dead input[name="reason"]`), "SMTP is back")))
	screenshot(ctx, t, "failed.png")
	resp, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(`#dead tr.dead button`)))
	require.NoError(t, err, "submit the retry")
	require.Equal(t, int64(200), resp.Status)
	done := waitText(ctx, t, `//div[@id="done"]`, "recorded: 1 job made for 1 event")
	id := regexp.MustCompile(`Replay #(\d+)`).FindStringSubmatch(done)
	require.NotNil(t, id, done)
	loc, err = chromedp.Run(ctx, chromedp.Location())
	require.NoError(t, err)
	require.Equal(t, ts.URL+"/replays/"+id[1]+"?done=1", loc)
	require.Equal(t, []string{"admin (web UI) from 127.0.0.1: SMTP is back"}, tb.replays(t))
	var made int64
	require.NoError(t, tb.db.Pool.QueryRow(context.Background(), `SELECT id FROM `+tb.db.Schema+`.river_job
		WHERE metadata->'notified'->>'replay_id' = $1 AND kind = 'send_receipt' AND metadata->'notified'->>'event_id' = '42'`, id[1]).Scan(&made))
	waitText(ctx, t, `//table[@id="replay-jobs"]`, strconv.FormatInt(made, 10), "send_receipt", "available")

	// From the River job back to its event.
	navigate(ctx, t, ts.URL+"/jobs/"+strconv.FormatInt(dead, 10))
	waitText(ctx, t, "//h1", "Event 42")
	loc, err = chromedp.Run(ctx, chromedp.Location())
	require.NoError(t, err)
	require.Equal(t, ts.URL+"/events/42", loc)
	waitText(ctx, t, `//table[@id="jobs"]`, "discarded", "#"+id[1], "SMTP is back")
}

// TestBrowserLogin signs in on the sign-in page, in a browser that sends no
// credentials of its own, and uses River UI, which stays blank when the
// credentials are only in the URL (the browser does not send them with the
// page's own requests). Then it signs out.
func TestBrowserLogin(t *testing.T) {
	t.Parallel()
	ctx := newBrowser(t, network.Headers{})
	tb := setup(t)
	ev := tb.dispatchEvent(t)
	ts := serve(t, tb.newServer(t, "admin", "s3cret"))

	// River UI's job list, asked for before signing in: the sign-in page,
	// then the list.
	navigate(ctx, t, ts.URL+"/riverui/jobs?state=available")
	waitText(ctx, t, "//h1", "Sign in")
	require.NoError(t, chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS(`#login input[name="user"]`), "admin")))
	require.NoError(t, chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS(`#login input[name="password"]`), "wrong")))
	resp, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(`#login button`)))
	require.NoError(t, err)
	require.Equal(t, int64(http.StatusUnauthorized), resp.Status)
	waitText(ctx, t, `//div[@id="login-error"]`, "wrong user or password")
	require.NoError(t, chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS(`#login input[name="user"]`), "admin")))
	require.NoError(t, chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS(`#login input[name="password"]`), "s3cret")))
	_, err = chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(`#login button`)))
	require.NoError(t, err)
	waitText(ctx, t, "//body", "send_receipt", "update_stock")
	loc, err := chromedp.Run(ctx, chromedp.Location())
	require.NoError(t, err)
	require.Equal(t, ts.URL+"/riverui/jobs?state=available", loc)

	cookies, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{ts.URL}})
	require.NoError(t, err)
	require.Len(t, cookies.Cookies, 1)
	c := cookies.Cookies[0]
	require.Equal(t, "notified_session", c.Name)
	require.True(t, c.HTTPOnly, "HttpOnly")
	require.True(t, c.Secure, "Secure")
	require.Equal(t, network.CookieSameSiteStrict, c.SameSite)
	// Scripts cannot read it.
	seen, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.cookie`))
	require.NoError(t, err)
	require.Empty(t, seen)

	// River UI's job page, with the job's metadata; then notified's pages
	// with the same session, and sign out from the nav bar.
	navigate(ctx, t, ts.URL+"/riverui/jobs/"+strconv.FormatInt(ev.jobs["send_receipt"], 10))
	waitText(ctx, t, "//main", "send_receipt", "Metadata")
	navigate(ctx, t, ts.URL+"/events")
	waitText(ctx, t, `//table[@id="events"]`, "42", "order_placed")
	waitText(ctx, t, `//form[@class="who"]`, "admin", "Sign out")
	_, err = chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(`form.who button`)))
	require.NoError(t, err)
	waitText(ctx, t, "//h1", "Sign in")
	cookies, err = chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{ts.URL}})
	require.NoError(t, err)
	require.Empty(t, cookies.Cookies)
	navigate(ctx, t, ts.URL+"/events")
	waitText(ctx, t, "//h1", "Sign in")
}
