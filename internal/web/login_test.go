package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// navigation are the headers a browser sends when it loads a page.
var navigation = map[string]string{"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Site": "none", "Accept": "text/html"}

func TestLoginSetsASessionCookie(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ts := serve(t, tb.newServer(t, "admin", "s3cret"))
	host := strings.TrimPrefix(ts.URL, "http://")
	withCookie := func(cookie string, hdr map[string]string) map[string]string {
		out := map[string]string{"Cookie": cookie}
		for k, v := range hdr {
			out[k] = v
		}
		return out
	}

	// A browser loading a page is sent to the sign-in page, and back after.
	r := send(t, ts, http.MethodGet, "/events?name=x", host, "", navigation, "")
	require.Equal(t, http.StatusSeeOther, r.code, r.body)
	require.Equal(t, "/login?next=%2Fevents%3Fname%3Dx", r.header.Get("Location"))
	// A program still gets the basic-auth challenge.
	r = send(t, ts, http.MethodGet, "/events", host, "", nil, "")
	require.Equal(t, http.StatusUnauthorized, r.code, r.body)
	require.NotEmpty(t, r.header.Get("WWW-Authenticate"))

	r = send(t, ts, http.MethodGet, "/login?next=%2Fevents%3Fname%3Dx", host, "", navigation, "")
	require.Equal(t, http.StatusOK, r.code, r.body)
	require.Contains(t, r.body, `<input type="hidden" name="next" value="/events?name=x">`)
	require.NotContains(t, r.body, tb.db.Channel, "the sign-in page shows nothing of the UI")

	login := func(user, password, next string, hdr map[string]string) response {
		form := url.Values{"user": {user}, "password": {password}, "next": {next}}
		return send(t, ts, http.MethodPost, "/login", host, "", hdr, form.Encode())
	}
	r = login("admin", "wrong", "/events", sameOrigin(ts.URL))
	require.Equal(t, http.StatusUnauthorized, r.code, r.body)
	require.Contains(t, r.body, "wrong user or password")
	require.Empty(t, r.header.Get("Set-Cookie"))

	r = send(t, ts, http.MethodPost, "/login", host, "", sameOrigin(ts.URL), "user="+strings.Repeat("a", 20<<10))
	require.Equal(t, http.StatusBadRequest, r.code)
	require.Contains(t, r.body, "the form could not be read: sign in again")

	r = login("admin", "s3cret", "/events", crossSite)
	require.Equal(t, http.StatusForbidden, r.code, r.body)
	require.Empty(t, r.header.Get("Set-Cookie"))

	r = login("admin", "s3cret", "//evil.example/", sameOrigin(ts.URL))
	require.Equal(t, http.StatusSeeOther, r.code, r.body)
	require.Equal(t, "/", r.header.Get("Location"), "never to another site")

	r = login("admin", "s3cret", "/events?name=x", sameOrigin(ts.URL))
	require.Equal(t, http.StatusSeeOther, r.code, r.body)
	require.Equal(t, "/events?name=x", r.header.Get("Location"))
	set := r.header.Get("Set-Cookie")
	require.Regexp(t, `^notified_session=[^;]+; Path=/; Max-Age=43200; HttpOnly; Secure; SameSite=Strict$`, set)
	cookie := strings.SplitN(set, ";", 2)[0]

	for _, path := range []string{"/events", "/riverui/", "/api/status", "/failed"} {
		r = send(t, ts, http.MethodGet, path, host, "", withCookie(cookie, nil), "")
		require.Equal(t, http.StatusOK, r.code, path)
	}
	r = send(t, ts, http.MethodGet, "/events", host, "", withCookie(cookie, nil), "")
	require.Contains(t, r.body, `<form class="who" method="post" action="/logout">admin <button`)

	// A cookie tampered with, or signed under the old password, is refused.
	r = send(t, ts, http.MethodGet, "/api/status", host, "", withCookie(cookie+"x", nil), "")
	require.Equal(t, http.StatusUnauthorized, r.code)
	other := serve(t, tb.newServer(t, "admin", "n3w"))
	r = send(t, other, http.MethodGet, "/api/status", strings.TrimPrefix(other.URL, "http://"), "", withCookie(cookie, nil), "")
	require.Equal(t, http.StatusUnauthorized, r.code)

	// Signing out clears the cookie.
	r = send(t, ts, http.MethodPost, "/logout", host, "", withCookie(cookie, sameOrigin(ts.URL)), "")
	require.Equal(t, http.StatusSeeOther, r.code, r.body)
	require.Equal(t, "/login", r.header.Get("Location"))
	require.Regexp(t, `^notified_session=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Strict$`, r.header.Get("Set-Cookie"))
	r = send(t, ts, http.MethodPost, "/logout", host, "", withCookie(cookie, crossSite), "")
	require.Equal(t, http.StatusForbidden, r.code, "signing out from another site")
}

func TestLoginPageWithoutCredentials(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ts := serve(t, tb.newServer(t, "", ""))
	r := get(t, ts, "/login", "", "")
	require.Equal(t, http.StatusSeeOther, r.code, r.body)
	require.Equal(t, "/", r.header.Get("Location"))
	r = send(t, ts, http.MethodPost, "/login", strings.TrimPrefix(ts.URL, "http://"), "", sameOrigin(ts.URL), "user=a&password=b")
	require.Equal(t, http.StatusSeeOther, r.code, r.body)
}
