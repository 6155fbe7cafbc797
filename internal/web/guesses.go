package web

import (
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Wrong credentials are limited per client address, on the sign-in form and
// in basic auth alike: after maxGuesses wrong ones within guessWindow, the
// address's further attempts are answered 429, right or wrong, until the
// window that began with its first wrong guess ends. Requests that carry no
// credentials, or a valid session cookie, are not affected. IPv6 clients
// are counted by /64, which one host usually holds whole. Behind a reverse
// proxy every client has the proxy's address: they then share the limit.
const (
	maxGuesses  = 10
	guessWindow = 15 * time.Minute
	// maxGuessAddrs bounds the addresses remembered: past it, expired
	// records are dropped, then the oldest.
	maxGuessAddrs = 10000
)

// guessLimiter counts wrong credentials per client address.
type guessLimiter struct {
	mu     sync.Mutex
	now    func() time.Time
	byAddr map[string]guessRecord
}

// guessRecord is an address's wrong guesses since the first of its window.
type guessRecord struct {
	n     int
	since time.Time
}

func newGuessLimiter() *guessLimiter {
	return &guessLimiter{now: time.Now, byAddr: map[string]guessRecord{}}
}

// clientKey is the address r's guesses are counted under.
func clientKey(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return host
	}
	if ip.To4() == nil {
		return ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
	}
	return ip.String()
}

// blocked returns how long r's address must wait before it may try
// credentials again, or 0.
func (l *guessLimiter) blocked(r *http.Request) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	rec, ok := l.byAddr[clientKey(r)]
	if !ok || rec.n < maxGuesses {
		return 0
	}
	wait := rec.since.Add(guessWindow).Sub(l.now())
	return max(wait, 0)
}

// failed counts a wrong guess from r's address.
func (l *guessLimiter) failed(r *http.Request) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now, key := l.now(), clientKey(r)
	rec, ok := l.byAddr[key]
	if !ok || now.Sub(rec.since) >= guessWindow {
		if !ok && len(l.byAddr) >= maxGuessAddrs {
			l.evict(now)
		}
		rec = guessRecord{since: now}
	}
	rec.n++
	l.byAddr[key] = rec
}

// evict makes room: it drops the expired records, or else the oldest.
func (l *guessLimiter) evict(now time.Time) {
	var oldest string
	for k, rec := range l.byAddr {
		if now.Sub(rec.since) >= guessWindow {
			delete(l.byAddr, k)
			continue
		}
		if oldest == "" || rec.since.Before(l.byAddr[oldest].since) {
			oldest = k
		}
	}
	if len(l.byAddr) >= maxGuessAddrs {
		delete(l.byAddr, oldest)
	}
}

// guessRefusal sets Retry-After on w and returns what to tell a client
// whose address has guessed wrong too often.
func guessRefusal(w http.ResponseWriter, wait time.Duration) string {
	w.Header().Set("Retry-After", strconv.Itoa(int(wait.Round(time.Second)/time.Second)+1))
	return "too many wrong sign-ins from this address: try again in " + wait.Round(time.Second).String()
}

// refuseGuess answers a request whose address has guessed wrong too often.
func refuseGuess(w http.ResponseWriter, wait time.Duration) {
	http.Error(w, "429 "+guessRefusal(w, wait), http.StatusTooManyRequests)
}
