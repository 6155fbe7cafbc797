package web_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestWrongGuessesAreLimited: after ten wrong credentials from an address,
// by basic auth or the sign-in form, its further attempts are refused with
// 429 and Retry-After, right or wrong; other addresses, and a browser
// signed in before, are not affected.
func TestWrongGuessesAreLimited(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	s := tb.newServer(t, "admin", "s3cret")
	do := func(method, path, remote, user, password, form, cookie string) *httptest.ResponseRecorder {
		t.Helper()
		var body io.Reader
		if form != "" {
			body = strings.NewReader(form)
		}
		r := httptest.NewRequest(method, path, body)
		r.Host, r.RemoteAddr = "localhost", remote
		if user != "" {
			r.SetBasicAuth(user, password)
		}
		if form != "" {
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r.Header.Set("Sec-Fetch-Site", "same-origin")
		}
		if cookie != "" {
			r.Header.Set("Cookie", cookie)
		}
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		return w
	}
	const a, b = "192.0.2.1:1000", "192.0.2.2:1000"

	w := do(http.MethodPost, "/login", a, "", "", "user=admin&password=s3cret&next=/", "")
	require.Equal(t, http.StatusSeeOther, w.Code, w.Body.String())
	cookie := strings.SplitN(w.Header().Get("Set-Cookie"), ";", 2)[0]

	for i := range 10 {
		w = do(http.MethodGet, "/api/status", a, "admin", "guess"+strconv.Itoa(i), "", "")
		require.Equal(t, http.StatusUnauthorized, w.Code, "guess %d", i)
	}
	w = do(http.MethodGet, "/api/status", a, "admin", "s3cret", "", "")
	require.Equal(t, http.StatusTooManyRequests, w.Code, w.Body.String())
	require.Contains(t, w.Body.String(), "too many wrong sign-ins from this address: try again in 15m0s")
	retry, err := strconv.Atoi(w.Header().Get("Retry-After"))
	require.NoError(t, err)
	require.InDelta(t, 901, retry, 5)
	w = do(http.MethodPost, "/login", a, "", "", "user=admin&password=s3cret&next=/", "")
	require.Equal(t, http.StatusTooManyRequests, w.Code)
	require.Contains(t, w.Body.String(), "too many wrong sign-ins from this address")
	require.Empty(t, w.Header().Get("Set-Cookie"))

	w = do(http.MethodGet, "/api/status", a, "", "", "", cookie)
	require.Equal(t, http.StatusOK, w.Code, "a browser signed in before is not affected")
	w = do(http.MethodGet, "/api/status", b, "admin", "s3cret", "", "")
	require.Equal(t, http.StatusOK, w.Code, "another address is not affected")

	// The sign-in form's wrong guesses count as well.
	for i := range 10 {
		w = do(http.MethodPost, "/login", b, "", "", "user=admin&password=guess"+strconv.Itoa(i), "")
		require.Equal(t, http.StatusUnauthorized, w.Code, "guess %d", i)
	}
	w = do(http.MethodPost, "/login", b, "", "", "user=admin&password=s3cret", "")
	require.Equal(t, http.StatusTooManyRequests, w.Code)
	w = do(http.MethodGet, "/api/status", b, "admin", "s3cret", "", "")
	require.Equal(t, http.StatusTooManyRequests, w.Code)
}
