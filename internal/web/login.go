package web

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// A signed-in browser carries a session cookie, accepted in addition to
// basic auth: browsers do not send credentials written in a URL with the
// requests a page's scripts make, so River UI, opened as
// https://user:password@host/riverui/, stays blank, and a browser's own
// basic-auth prompt cannot be signed out of.
//
// The cookie holds the user, when it expires, and an HMAC-SHA256 of both
// under a key derived from the configured user and password: changing the
// password signs every browser out. It is Secure (browsers keep it from
// https:// and from http://localhost or 127.0.0.1 only), HttpOnly and
// SameSite=Strict.

// sessionCookie is the session cookie's name.
const sessionCookie = "notified_session"

// sessionTTL is how long a sign-in lasts.
const sessionTTL = 12 * time.Hour

// sessionKey derives the key that signs sessions from the configured
// credentials.
func sessionKey(user, password string) ([]byte, error) {
	key, err := hkdf.Key(sha256.New, []byte(password), []byte(user), "notified web UI session v1", 32)
	if err != nil {
		return nil, fmt.Errorf("derive the session key: %w", err)
	}
	return key, nil
}

// signSession returns the cookie value for user until expires.
func signSession(key []byte, user string, expires time.Time) string {
	payload := base64.RawURLEncoding.EncodeToString([]byte(user)) + "." + strconv.FormatInt(expires.Unix(), 10)
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(payload))
	return payload + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// errBadSession says a session cookie is not one this server signed, or
// has expired.
var errBadSession = errors.New("session cookie is not valid")

// verifySession returns the user of a cookie value signed with key and
// not expired at now.
func verifySession(key []byte, value string, now time.Time) (string, error) {
	i := strings.LastIndexByte(value, '.')
	if i < 0 {
		return "", errBadSession
	}
	payload, sig := value[:i], value[i+1:]
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil {
		return "", errBadSession
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(payload))
	if !hmac.Equal(got, mac.Sum(nil)) {
		return "", errBadSession
	}
	userPart, expPart, ok := strings.Cut(payload, ".")
	if !ok {
		return "", errBadSession
	}
	exp, err := strconv.ParseInt(expPart, 10, 64)
	if err != nil || !now.Before(time.Unix(exp, 0)) {
		return "", errBadSession
	}
	user, err := base64.RawURLEncoding.DecodeString(userPart)
	if err != nil {
		return "", errBadSession
	}
	return string(user), nil
}

// sessionUser returns the user signed in with a valid session cookie, or
// "".
func (s *Server) sessionUser(r *http.Request) string {
	if s.sessionKey == nil {
		return ""
	}
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return ""
	}
	user, err := verifySession(s.sessionKey, c.Value, time.Now())
	if err != nil || !s.credentialsMatch(user, s.opts.Password) {
		return ""
	}
	return user
}

// credentialsMatch reports whether user and password are the configured
// ones, comparing digests so that it takes the same time whatever the
// lengths.
func (s *Server) credentialsMatch(user, password string) bool {
	hu, hp := sha256.Sum256([]byte(user)), sha256.Sum256([]byte(password))
	wu, wp := sha256.Sum256([]byte(s.opts.User)), sha256.Sum256([]byte(s.opts.Password))
	return subtle.ConstantTimeCompare(hu[:], wu[:])&subtle.ConstantTimeCompare(hp[:], wp[:]) == 1
}

// localPath returns next when it is a path of this server ("/events?x"),
// else "/": a sign-in never sends the browser to another site.
func localPath(next string) string {
	if next == "" || next[0] != '/' || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n\t") {
		return "/"
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" {
		return "/"
	}
	return next
}

// loginPage serves GET /login: the sign-in form.
func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	if s.sessionKey == nil {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	s.showLogin(w, r, http.StatusOK, localPath(r.URL.Query().Get("next")), "")
}

func (s *Server) showLogin(w http.ResponseWriter, r *http.Request, code int, next, msg string) {
	s.show(w, r, code, "login.html", "Sign in", "login", map[string]any{"Next": next, "Error": msg})
}

// login serves POST /login: it checks the credentials and sets the
// session cookie.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	if s.sessionKey == nil {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		s.showLogin(w, r, http.StatusBadRequest, "/", "the form could not be read: sign in again")
		return
	}
	next := localPath(r.PostForm.Get("next"))
	user := r.PostForm.Get("user")
	if wait := s.guesses.blocked(r); wait > 0 {
		s.log.Warn("web UI: refused a sign-in from an address that guessed wrong too often",
			slog.String("remote", r.RemoteAddr), slog.Duration("retry_after", wait))
		s.showLogin(w, r, http.StatusTooManyRequests, next, guessRefusal(w, wait))
		return
	}
	if !s.credentialsMatch(user, r.PostForm.Get("password")) {
		s.guesses.failed(r)
		s.log.Warn("web UI: refused a sign-in", slog.String("remote", r.RemoteAddr))
		s.showLogin(w, r, http.StatusUnauthorized, next, "wrong user or password: they are NOTIFIED_UI_USER and NOTIFIED_UI_PASSWORD of the bridge")
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: signSession(s.sessionKey, user, time.Now().Add(sessionTTL)),
		Path: "/", MaxAge: int(sessionTTL.Seconds()), Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode,
	})
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// logout serves POST /logout: it clears the session cookie.
func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1,
		Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// isNavigation reports whether r is a browser loading a page (not a
// script's request, nor a program's): one that a sign-in page can answer.
func isNavigation(r *http.Request) bool {
	return r.Method == http.MethodGet && r.Header.Get("Sec-Fetch-Mode") == "navigate"
}
