// Package web serves notified in a browser: River's UI under /riverui/,
// the events (/events), each event's history as a page (/events/{id}) and
// as JSON (/api/events/{id}), the dead letters with forms to replay them
// (/failed), and the pipeline's status (/status, /api/status); optionally
// behind HTTP basic auth or a sign-in page (/login) that sets a session
// cookie.
//
// Browsers send a user's saved basic-auth credentials with requests that
// other sites' pages make, and let a page whose name was made to resolve to
// this server (DNS rebinding) read what it answers. So the UI refuses a
// request whose Host header is not one of its names (see
// Options.AllowedHosts), and a cross-origin request that could change
// something (any method but GET, HEAD and OPTIONS, judged by
// http.CrossOriginProtection from Sec-Fetch-Site and Origin). Serve applies
// the second rule to everything it serves.
package web

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"riverqueue.com/riverui"

	"github.com/notified/notified/bridge"
	"github.com/notified/notified/history"
	"github.com/notified/notified/internal/termsafe"
)

// Options configure the server.
type Options struct {
	// Pool is the database, where River's and notified's tables are.
	Pool *pgxpool.Pool
	// Events is the bridge's configuration: schema, channel, events table.
	// An event's row is shown when the table can be read.
	Events bridge.Config
	// User and Password, when both set, protect every page with HTTP basic
	// auth.
	User, Password string
	// Addr is the address the server listens on, as given to Serve
	// ("127.0.0.1:8080", ":8080"). The UI answers to its host; and when
	// that is a loopback address, localhost, or every interface (no host,
	// 0.0.0.0, [::]), or Addr is empty, to localhost, 127.0.0.1 and [::1].
	Addr string
	// AllowedHosts are further names the UI answers to in a request's Host
	// header, such as the name a reverse proxy that keeps the Host header
	// is reached by: "notified.example.com", "10.0.0.5", "[fd00::5]". A
	// name matches in any case, with or without a final dot, and on any
	// port; "name:port" matches on that port only (a Host without a port
	// counting as port 80 or 443). A request for any other name is refused
	// with 403 Forbidden, before authentication.
	AllowedHosts []string
	// AllowedHostsSetting says, in the refusal of a request for another
	// name, where an operator adds a name to AllowedHosts (a flag, an
	// environment variable). Empty means "web.Options.AllowedHosts".
	AllowedHostsSetting string
	// Logger receives errors; nil means slog.Default().
	Logger *slog.Logger
}

// Server is the web UI's HTTP handler.
type Server struct {
	opts    Options
	hosts   *hostPolicy
	origins *http.CrossOriginProtection
	store   *history.Store
	riverui *riverui.Handler
	mux     *http.ServeMux
	log     *slog.Logger
	// sessionKey signs session cookies; nil without credentials.
	sessionKey []byte
	// guesses limits wrong credentials per client address.
	guesses *guessLimiter
}

// New builds the server and starts River UI's background services, which
// stop when ctx is done.
func New(ctx context.Context, opts Options) (*Server, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if (opts.User == "") != (opts.Password == "") {
		return nil, errors.New("web UI: set both User and Password, or neither")
	}
	if opts.Events.Channel == "" {
		opts.Events.Channel = bridge.DefaultChannel
	}
	if opts.AllowedHostsSetting == "" {
		opts.AllowedHostsSetting = "web.Options.AllowedHosts"
	}
	hosts, err := newHostPolicy(opts.Addr, opts.AllowedHosts)
	if err != nil {
		return nil, fmt.Errorf("web UI: %w", err)
	}
	client, err := river.NewClient(riverpgxv5.New(opts.Pool), &river.Config{Schema: opts.Events.Schema, Logger: opts.Logger})
	if err != nil {
		return nil, fmt.Errorf("web UI: river client: %w", err)
	}
	ui, err := riverui.NewHandler(&riverui.HandlerOpts{
		Endpoints: riverui.NewEndpoints(client, nil),
		Logger:    opts.Logger,
		Prefix:    "/riverui",
	})
	if err != nil {
		return nil, fmt.Errorf("web UI: River UI: %w", err)
	}
	if err := ui.Start(ctx); err != nil {
		return nil, fmt.Errorf("web UI: start River UI: %w", err)
	}
	s := &Server{opts: opts, hosts: hosts, origins: http.NewCrossOriginProtection(),
		store: history.NewStore(opts.Pool, opts.Events.Schema), riverui: ui, mux: http.NewServeMux(), log: opts.Logger,
		guesses: newGuessLimiter()}
	if opts.User != "" {
		if s.sessionKey, err = sessionKey(opts.User, opts.Password); err != nil {
			return nil, fmt.Errorf("web UI: %w", err)
		}
	}
	s.mux.Handle("/riverui/", ui)
	s.mux.HandleFunc("GET /login", s.loginPage)
	s.mux.HandleFunc("POST /login", s.login)
	s.mux.HandleFunc("POST /logout", s.logout)
	s.mux.HandleFunc("GET /{$}", s.index)
	s.mux.HandleFunc("GET /events", s.eventsList)
	s.mux.HandleFunc("GET /events/{id}", s.eventPage)
	s.mux.HandleFunc("GET /failed", s.failedPage)
	s.mux.HandleFunc("POST /failed/retry", s.retryDeadLetter)
	s.mux.HandleFunc("POST /failed/replay", s.replayEvent)
	s.mux.HandleFunc("POST /failed/resume", s.resumeLane)
	s.mux.HandleFunc("GET /replays/{id}", s.replayPage)
	s.mux.HandleFunc("GET /status", s.statusPage)
	s.mux.HandleFunc("GET /jobs/{id}", s.jobRedirect)
	s.mux.HandleFunc("GET /api/events", s.eventsListJSON)
	s.mux.HandleFunc("GET /api/events/{id}", s.eventJSON)
	s.mux.HandleFunc("GET /api/status", s.statusJSON)
	return s, nil
}

// Handle mounts h at pattern, behind the same checks and authentication as
// the rest.
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// ServeHTTP serves the UI to requests for one of its names that are not
// cross-origin changes, asking for credentials when they are configured.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.hosts.allows(r.Host) {
		s.log.Warn("web UI: refused a request for a host name it does not answer to",
			slog.String("host", r.Host), slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.String("allowed", strings.Join(s.hosts.names, ", ")))
		http.Error(w, hostRefusal(r.Host, s.opts.AllowedHostsSetting), http.StatusForbidden)
		return
	}
	if !checkOrigin(s.origins, w, r, s.log) {
		return
	}
	if s.opts.User != "" && r.URL.Path != "/login" {
		ok, wait := s.authorized(r)
		switch {
		case ok:
			s.mux.ServeHTTP(w, r)
			return
		case wait > 0:
			s.log.Warn("web UI: refused credentials from an address that guessed wrong too often",
				slog.String("remote", r.RemoteAddr), slog.Duration("retry_after", wait))
			refuseGuess(w, wait)
			return
		}
		if isNavigation(r) {
			// A browser loading a page: the sign-in page, then back here.
			http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		w.Header().Set("WWW-Authenticate", `Basic realm="notified", charset="UTF-8"`)
		http.Error(w, "401 unauthorized: this notified UI needs the user and password set in NOTIFIED_UI_USER and NOTIFIED_UI_PASSWORD", http.StatusUnauthorized)
		return
	}
	s.mux.ServeHTTP(w, r)
}

// authorized reports whether r carries the configured credentials, in a
// session cookie (see login.go) or by basic auth; wrong basic-auth
// credentials count as a guess of r's address, and when it has guessed too
// often, wait says how long it must wait (see guesses.go).
func (s *Server) authorized(r *http.Request) (ok bool, wait time.Duration) {
	if s.sessionUser(r) != "" {
		return true, 0
	}
	user, pass, has := r.BasicAuth()
	if !has {
		return false, 0
	}
	if wait := s.guesses.blocked(r); wait > 0 {
		return false, wait
	}
	if s.credentialsMatch(user, pass) {
		return true, 0
	}
	s.guesses.failed(r)
	return false, 0
}

// ErrInsecure is returned by CheckAddr for a non-loopback address without
// credentials.
var ErrInsecure = errors.New("web UI would be open to the network without a password")

// CheckAddr refuses to serve the UI on an address other machines can reach
// unless it is protected by credentials or insecure is set.
func CheckAddr(addr string, withAuth, insecure bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--http-addr %q is not host:port or :port: %w", addr, err)
	}
	if withAuth || insecure || isLoopback(host) {
		return nil
	}
	where := host
	if where == "" {
		where = "every interface"
	}
	return fmt.Errorf("%w: --http-addr %s listens on %s; set NOTIFIED_UI_USER and NOTIFIED_UI_PASSWORD, listen on 127.0.0.1, or pass --insecure-ui",
		ErrInsecure, addr, where)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// hostRefusal is the answer to a request for a host name the UI does not
// answer to. It names neither the names it answers to (a rebinding page
// reads it) nor anything but what was asked.
func hostRefusal(host, setting string) string {
	if host == "" {
		return "403 forbidden: this notified web UI answers only requests with a Host header naming it"
	}
	name := host
	if n, _, err := splitHost(host); err == nil && n != "" {
		name = n
		if strings.Contains(n, ":") {
			name = "[" + n + "]"
		}
	}
	return fmt.Sprintf("403 forbidden: this notified web UI does not answer to the host name in the request (Host: %q). "+
		"If that is a name it is reached by, through a reverse proxy say, add %q to %s", host, name, setting)
}

// checkOrigin refuses a cross-origin request that could change something
// (any method but GET, HEAD and OPTIONS) with 403, and reports whether the
// request may go on.
func checkOrigin(cop *http.CrossOriginProtection, w http.ResponseWriter, r *http.Request, log *slog.Logger) bool {
	err := cop.Check(r)
	if err == nil {
		return true
	}
	if log != nil {
		log.Warn("http server: refused a cross-origin request", slog.String("method", r.Method),
			slog.String("path", r.URL.Path), slog.String("origin", r.Header.Get("Origin")),
			slog.String("sec_fetch_site", r.Header.Get("Sec-Fetch-Site")), slog.String("error", err.Error()))
	}
	http.Error(w, "403 forbidden: "+err.Error()+": notified takes changes only from its own pages", http.StatusForbidden)
	return false
}

// Serve listens on addr and serves h until ctx is done, then shuts down
// gracefully. ready, if not nil, receives the address listened on.
//
// Whatever h is, Serve refuses cross-origin requests that could change
// something (see http.CrossOriginProtection) with 403 Forbidden.
func Serve(ctx context.Context, addr string, h http.Handler, log *slog.Logger, ready func(net.Addr)) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("http server: listen on %s: %w", addr, err)
	}
	cop := http.NewCrossOriginProtection()
	protected := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if checkOrigin(cop, w, r, log) {
			h.ServeHTTP(w, r)
		}
	})
	srv := &http.Server{Handler: protected, ReadHeaderTimeout: 10 * time.Second}
	if ready != nil {
		ready(ln.Addr())
	}
	if log != nil {
		log.Info("http server listening", slog.String("addr", ln.Addr().String()))
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("http server: serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("http server: shut down: %w", err)
	}
	<-errc
	return nil
}

//go:embed templates/*.html
var templateFS embed.FS

var templates = template.Must(template.New("").Funcs(template.FuncMap{
	"time": func(t any) string {
		switch v := t.(type) {
		case time.Time:
			return v.UTC().Format("2006-01-02 15:04:05.000 UTC")
		case *time.Time:
			if v == nil {
				return "-"
			}
			return v.UTC().Format("2006-01-02 15:04:05.000 UTC")
		}
		return ""
	},
	"deref": func(p any) string {
		switch v := p.(type) {
		case *string:
			if v != nil {
				return *v
			}
		case *int64:
			if v != nil {
				return fmt.Sprint(*v)
			}
		}
		return ""
	},
	"pathEscape": url.PathEscape,
	"inert":      inert,
	"short":      func(n int, s string) string { return termsafe.Shorten(inert(s), n) },
	"ago":        ago,
	"secs":       secs,
	"outcomes": func() []string {
		return []string{history.OutcomeDispatched, history.OutcomeUnrouted, history.OutcomeMissing, history.OutcomeRejected}
	},
	"states": func() []string { return history.JobStates },
}).ParseFS(templateFS, "templates/*.html"))

func (s *Server) index(w http.ResponseWriter, r *http.Request) {
	if id := strings.TrimSpace(r.URL.Query().Get("event")); id != "" {
		http.Redirect(w, r, "/events/"+url.PathEscape(id), http.StatusSeeOther)
		return
	}
	s.show(w, r, http.StatusOK, "index.html", "notified", "", nil)
}

// lookup reads one event's history, and its row when the table allows.
func (s *Server) lookup(r *http.Request) (*history.Event, int, error) {
	id := r.PathValue("id")
	cfg := s.opts.Events
	if ch := r.URL.Query().Get("channel"); ch != "" {
		cfg.Channel = ch
	}
	table := history.EventsTable{Table: cfg.Table, IDColumn: cfg.IDColumn, NameColumn: cfg.NameColumn}
	v, err := s.store.View(r.Context(), table, cfg.WithDefaults().Channel, id)
	switch {
	case errors.Is(err, history.ErrNotFound):
		return nil, http.StatusNotFound, err
	case err != nil:
		s.log.Error("web UI: read event history", slog.String("event_id", id), slog.String("error", err.Error()))
		return nil, http.StatusInternalServerError, errors.New("could not read the event's history: see the bridge's log")
	}
	return v.Event, http.StatusOK, nil
}

func (s *Server) eventPage(w http.ResponseWriter, r *http.Request) {
	ev, code, err := s.lookup(r)
	if err != nil {
		s.fail(w, r, code, err.Error())
		return
	}
	s.show(w, r, http.StatusOK, "event.html", "Event "+inert(ev.ID), "events", ev)
}

func (s *Server) eventJSON(w http.ResponseWriter, r *http.Request) {
	ev, code, err := s.lookup(r)
	if err != nil {
		writeJSON(w, code, map[string]string{"error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, ev)
}

func (s *Server) statusJSON(w http.ResponseWriter, r *http.Request) {
	ch := s.opts.Events.Channel
	if c := r.URL.Query().Get("channel"); c != "" {
		ch = c
	}
	st, err := s.store.Status(r.Context(), ch, 0)
	if err != nil {
		s.log.Error("web UI: read status", slog.String("error", err.Error()))
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "could not read the status: see the bridge's log"})
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
