// Package web serves notified in a browser: River's UI under /riverui/,
// and each event's history as a page (/events/{id}) and as JSON
// (/api/events/{id}), optionally behind HTTP basic auth.
package web

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
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
	// Logger receives errors; nil means slog.Default().
	Logger *slog.Logger
}

// Server is the web UI's HTTP handler.
type Server struct {
	opts    Options
	store   *history.Store
	riverui *riverui.Handler
	mux     *http.ServeMux
	log     *slog.Logger
}

// New builds the server and starts River UI's background services, which
// stop when ctx is done.
func New(ctx context.Context, opts Options) (*Server, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if (opts.User == "") != (opts.Password == "") {
		return nil, errors.New("web UI: set both NOTIFIED_UI_USER and NOTIFIED_UI_PASSWORD, or neither")
	}
	if opts.Events.Channel == "" {
		opts.Events.Channel = bridge.DefaultChannel
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
	s := &Server{opts: opts, store: history.NewStore(opts.Pool, opts.Events.Schema), riverui: ui,
		mux: http.NewServeMux(), log: opts.Logger}
	s.mux.Handle("/riverui/", ui)
	s.mux.HandleFunc("GET /{$}", s.index)
	s.mux.HandleFunc("GET /events/{id}", s.eventPage)
	s.mux.HandleFunc("GET /api/events/{id}", s.eventJSON)
	s.mux.HandleFunc("GET /api/status", s.statusJSON)
	return s, nil
}

// Handle mounts h at pattern, behind the same authentication as the rest.
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// ServeHTTP serves the UI, asking for credentials when they are configured.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.opts.User != "" && !s.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Basic realm="notified", charset="UTF-8"`)
		http.Error(w, "401 unauthorized: this notified UI needs the user and password set in NOTIFIED_UI_USER and NOTIFIED_UI_PASSWORD", http.StatusUnauthorized)
		return
	}
	s.mux.ServeHTTP(w, r)
}

func (s *Server) authorized(r *http.Request) bool {
	user, pass, ok := r.BasicAuth()
	if !ok {
		return false
	}
	// Compare digests, so the comparison takes the same time whatever the
	// lengths.
	hu, hp := sha256.Sum256([]byte(user)), sha256.Sum256([]byte(pass))
	wu, wp := sha256.Sum256([]byte(s.opts.User)), sha256.Sum256([]byte(s.opts.Password))
	return subtle.ConstantTimeCompare(hu[:], wu[:])&subtle.ConstantTimeCompare(hp[:], wp[:]) == 1
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

// Serve listens on addr and serves h until ctx is done, then shuts down
// gracefully. ready, if not nil, receives the address listened on.
func Serve(ctx context.Context, addr string, h http.Handler, log *slog.Logger, ready func(net.Addr)) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("http server: listen on %s: %w", addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
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
}).ParseFS(templateFS, "templates/*.html"))

func (s *Server) index(w http.ResponseWriter, r *http.Request) {
	if id := strings.TrimSpace(r.URL.Query().Get("event")); id != "" {
		http.Redirect(w, r, "/events/"+url.PathEscape(id), http.StatusSeeOther)
		return
	}
	s.render(w, "index.html", map[string]any{"Channel": s.opts.Events.Channel})
}

// lookup reads one event's history, and its row when the table allows.
func (s *Server) lookup(r *http.Request) (*history.Event, int, error) {
	id := r.PathValue("id")
	cfg := s.opts.Events
	if ch := r.URL.Query().Get("channel"); ch != "" {
		cfg.Channel = ch
	}
	row, lookupErr := bridge.LookupEvent(r.Context(), s.opts.Pool, cfg, id)
	if lookupErr == nil {
		id = row.ID
	}
	ev, err := s.store.Event(r.Context(), cfg.Channel, id)
	switch {
	case errors.Is(err, history.ErrNotFound):
		return nil, http.StatusNotFound, err
	case err != nil:
		s.log.Error("web UI: read event history", slog.String("event_id", id), slog.String("error", err.Error()))
		return nil, http.StatusInternalServerError, errors.New("could not read the event's history: see the bridge's log")
	}
	if row != nil && row.Found {
		ev.Data = row.Data
		if ev.Name == nil { // not dispatched yet: the row knows
			ev.Name = row.Name
		}
	}
	return ev, http.StatusOK, nil
}

func (s *Server) eventPage(w http.ResponseWriter, r *http.Request) {
	ev, code, err := s.lookup(r)
	if err != nil {
		w.WriteHeader(code)
		s.render(w, "error.html", map[string]any{"Code": code, "Message": err.Error()})
		return
	}
	s.render(w, "event.html", ev)
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

func (s *Server) render(w http.ResponseWriter, name string, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := templates.ExecuteTemplate(w, name, data); err != nil {
		s.log.Error("web UI: render page", slog.String("page", name), slog.String("error", err.Error()))
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
