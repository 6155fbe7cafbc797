package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/notified/notified/history"
	"github.com/notified/notified/lanes"
)

// page is what every page's template gets: its title, the nav entry it
// belongs to, the channel shown, and its own data.
type page struct {
	Title   string
	Nav     string
	Channel string
	// Other says the channel is not the configured one: links and forms
	// then carry it.
	Other bool
	// User is who is signed in with a session (empty with basic auth or
	// none); the nav then offers to sign out.
	User string
	Data any
}

// pageCSP is the Content-Security-Policy of notified's own pages.
const pageCSP = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// channel is the channel a request asks for (?channel=), or the
// configured one.
func (s *Server) channel(r *http.Request) string {
	if ch := r.URL.Query().Get("channel"); ch != "" {
		return ch
	}
	return s.opts.Events.WithDefaults().Channel
}

// show renders the page name with data, with code.
func (s *Server) show(w http.ResponseWriter, r *http.Request, code int, name, title, nav string, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	// No script runs on these pages, their forms post only here, and no
	// other site may frame them (to trick a click on a replay).
	w.Header().Set("Content-Security-Policy", pageCSP)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	ch := s.channel(r)
	p := page{Title: title, Nav: nav, Channel: ch, Other: ch != s.opts.Events.WithDefaults().Channel, User: s.sessionUser(r), Data: data}
	if err := templates.ExecuteTemplate(w, name, p); err != nil {
		s.log.Error("web UI: render page", slog.String("page", name), slog.String("error", err.Error()))
	}
}

// fail shows the error page.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, code int, msg string) {
	s.show(w, r, code, "error.html", http.StatusText(code), "", map[string]any{"Code": code, "Message": msg})
}

// listForm is the events list's filter form as the query string gives it.
type listForm struct {
	Name, Outcome, Handler, State, Since, Until string
	Limit                                       int
}

// query returns the form as a query string, with extra parameters.
func (f listForm) query(extra url.Values) string {
	v := url.Values{}
	for k, s := range map[string]string{"name": f.Name, "outcome": f.Outcome, "handler": f.Handler,
		"state": f.State, "since": f.Since, "until": f.Until} {
		if s != "" {
			v.Set(k, s)
		}
	}
	if f.Limit != 0 {
		v.Set("limit", strconv.Itoa(f.Limit))
	}
	for k, vs := range extra {
		v[k] = vs
	}
	return v.Encode()
}

// parseListForm reads the filter form and cursor of the events list.
func parseListForm(q url.Values, channel string) (listForm, history.EventFilter, error) {
	get := func(k string) string { return strings.TrimSpace(q.Get(k)) }
	form := listForm{Name: get("name"), Outcome: get("outcome"), Handler: get("handler"), State: get("state"),
		Since: get("since"), Until: get("until")}
	f := history.EventFilter{Channel: channel, Name: form.Name, Handler: form.Handler}
	if form.Outcome != "" {
		f.Outcomes = []string{form.Outcome}
	}
	if form.State != "" {
		f.JobStates = []string{form.State}
	}
	var err error
	if f.Since, err = parseFormTime(form.Since); err != nil {
		return form, f, fmt.Errorf("from: %w", err)
	}
	if f.Until, err = parseFormTime(form.Until); err != nil {
		return form, f, fmt.Errorf("until: %w", err)
	}
	if l := get("limit"); l != "" {
		if form.Limit, err = strconv.Atoi(l); err != nil || form.Limit < 1 || form.Limit > history.MaxPageSize {
			return form, f, fmt.Errorf("page size %q is not a number from 1 to %d", l, history.MaxPageSize)
		}
		f.Limit = form.Limit
	}
	if at := get("after_at"); at != "" {
		t, err := time.Parse(time.RFC3339Nano, at)
		if err != nil {
			return form, f, fmt.Errorf("the link to the next page is damaged (after_at %q): start again from the newest", at)
		}
		f.After = &history.Cursor{DispatchedAt: t, EventID: q.Get("after_id")}
	}
	return form, f, nil
}

// formTimeLayouts are the time formats the filters take: a browser's
// datetime-local input (in UTC), and RFC 3339.
var formTimeLayouts = []string{"2006-01-02T15:04", "2006-01-02T15:04:05", time.RFC3339Nano, "2006-01-02"}

func parseFormTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	for _, l := range formTimeLayouts {
		if t, err := time.ParseInLocation(l, s, time.UTC); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a time: use YYYY-MM-DDTHH:MM (UTC) or RFC 3339", s)
}

// eventsList serves /events: the newest events, filtered, a page at a
// time.
func (s *Server) eventsList(w http.ResponseWriter, r *http.Request) {
	channel := s.channel(r)
	form, f, err := parseListForm(r.URL.Query(), channel)
	data := map[string]any{"Form": form, "Outcomes": []string{history.OutcomeDispatched, history.OutcomeUnrouted,
		history.OutcomeMissing, history.OutcomeRejected}, "States": history.JobStates, "Deep": f.After != nil}
	if err != nil {
		data["Error"] = err.Error()
		s.show(w, r, http.StatusBadRequest, "events.html", "Events", "events", data)
		return
	}
	p, err := history.NewStore(s.opts.Pool, s.opts.Events.Schema).List(r.Context(), f)
	switch {
	case errors.Is(err, history.ErrBadFilter):
		data["Error"] = err.Error()
		s.show(w, r, http.StatusBadRequest, "events.html", "Events", "events", data)
		return
	case err != nil:
		s.log.Error("web UI: list events", slog.String("error", err.Error()))
		s.fail(w, r, http.StatusInternalServerError, "could not list the events: see the bridge's log")
		return
	}
	data["Page"] = p
	if p.Next != nil {
		extra := url.Values{"after_at": {p.Next.DispatchedAt.Format(time.RFC3339Nano)}, "after_id": {p.Next.EventID}}
		if ch := r.URL.Query().Get("channel"); ch != "" {
			extra.Set("channel", ch)
		}
		data["Next"] = "/events?" + form.query(extra)
	}
	first := url.Values{}
	if ch := r.URL.Query().Get("channel"); ch != "" {
		first.Set("channel", ch)
	}
	data["First"] = "/events?" + form.query(first)
	s.show(w, r, http.StatusOK, "events.html", "Events", "events", data)
}

// eventsListJSON serves /api/events: the events list as JSON, with the
// page's filters and paging (name, outcome, handler, state, since, until,
// after_at and after_id, channel), and "next", the URL of the following
// page, or null on the last.
func (s *Server) eventsListJSON(w http.ResponseWriter, r *http.Request) {
	form, f, err := parseListForm(r.URL.Query(), s.channel(r))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	p, err := history.NewStore(s.opts.Pool, s.opts.Events.Schema).List(r.Context(), f)
	switch {
	case errors.Is(err, history.ErrBadFilter):
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	case err != nil:
		s.log.Error("web UI: list events", slog.String("error", err.Error()))
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "could not list the events: see the bridge's log"})
		return
	}
	out := struct {
		Events []history.EventSummary `json:"events"`
		Next   *string                `json:"next"`
	}{Events: p.Events}
	if out.Events == nil {
		out.Events = []history.EventSummary{}
	}
	if p.Next != nil {
		extra := url.Values{"after_at": {p.Next.DispatchedAt.Format(time.RFC3339Nano)}, "after_id": {p.Next.EventID}}
		if ch := r.URL.Query().Get("channel"); ch != "" {
			extra.Set("channel", ch)
		}
		next := "/api/events?" + form.query(extra)
		out.Next = &next
	}
	writeJSON(w, http.StatusOK, out)
}

// failedLimit is how many dead letters, and how many rejected or missing
// events, the failed page shows.
const failedLimit = 50

// failedPage serves /failed: the dead letters, and the events rejected or
// missing, each with a form to replay it, and the lanes of ordered routes
// stopped at a failure, each with a form to resume it.
func (s *Server) failedPage(w http.ResponseWriter, r *http.Request) {
	channel := s.channel(r)
	store := history.NewStore(s.opts.Pool, s.opts.Events.Schema)
	dead, err := store.DeadLetters(r.Context(), history.DeadLetterFilter{Channel: channel, Limit: failedLimit + 1})
	if err != nil {
		s.log.Error("web UI: list dead letters", slog.String("error", err.Error()))
		s.fail(w, r, http.StatusInternalServerError, "could not list the dead letters: see the bridge's log")
		return
	}
	events, more, err := failedEvents(r.Context(), store, channel)
	if err != nil {
		s.log.Error("web UI: list failed events", slog.String("error", err.Error()))
		s.fail(w, r, http.StatusInternalServerError, "could not list the rejected and missing events: see the bridge's log")
		return
	}
	stopped, err := lanes.NewStore(s.opts.Pool, s.opts.Events.Schema).List(r.Context(),
		lanes.ListOptions{Channel: channel, Stopped: true, Limit: failedLimit + 1})
	if err != nil {
		s.log.Error("web UI: list stopped lanes", slog.String("error", err.Error()))
		s.fail(w, r, http.StatusInternalServerError, "could not list the stopped lanes: see the bridge's log")
		return
	}
	data := map[string]any{"Dead": dead, "MoreDead": len(dead) > failedLimit, "Events": events, "MoreEvents": more, "Limit": failedLimit,
		"Stopped": stopped, "MoreStopped": len(stopped) > failedLimit, "Resumed": r.URL.Query().Get("resumed")}
	if len(stopped) > failedLimit {
		data["Stopped"] = stopped[:failedLimit]
	}
	if len(dead) > failedLimit {
		data["Dead"] = dead[:failedLimit]
	}
	s.show(w, r, http.StatusOK, "failed.html", "Failed", "failed", data)
}

// statusPage serves /status: the backlog, the outcomes, the handlers and
// the bridges, as /api/status gives them.
func (s *Server) statusPage(w http.ResponseWriter, r *http.Request) {
	st, err := s.store.Status(r.Context(), s.channel(r), 0)
	if err != nil {
		s.log.Error("web UI: read status", slog.String("error", err.Error()))
		s.fail(w, r, http.StatusInternalServerError, "could not read the status: see the bridge's log")
		return
	}
	s.show(w, r, http.StatusOK, "status.html", "Status", "status", st)
}

// jobRedirect serves /jobs/{id}: it sends a River job of notified's to
// its event's page.
func (s *Server) jobRedirect(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		s.fail(w, r, http.StatusNotFound, fmt.Sprintf("%q is not a job id: a job id is a positive number, as River UI shows it", r.PathValue("id")))
		return
	}
	channel, event, err := s.store.JobEvent(r.Context(), id)
	switch {
	case errors.Is(err, history.ErrNotFound):
		s.fail(w, r, http.StatusNotFound, err.Error())
		return
	case err != nil:
		s.log.Error("web UI: look up a job's event", slog.Int64("job_id", id), slog.String("error", err.Error()))
		s.fail(w, r, http.StatusInternalServerError, "could not look up the job: see the bridge's log")
		return
	}
	target := "/events/" + url.PathEscape(event)
	if channel != s.opts.Events.WithDefaults().Channel {
		target += "?channel=" + url.QueryEscape(channel)
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// replayPage serves /replays/{id}: a replay's record and the jobs it made.
func (s *Server) replayPage(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		s.fail(w, r, http.StatusNotFound, fmt.Sprintf("%q is not a replay id", r.PathValue("id")))
		return
	}
	rp, err := s.store.Replay(r.Context(), id)
	switch {
	case errors.Is(err, history.ErrNotFound):
		s.fail(w, r, http.StatusNotFound, err.Error())
		return
	case err != nil:
		s.log.Error("web UI: read replay", slog.Int64("replay_id", id), slog.String("error", err.Error()))
		s.fail(w, r, http.StatusInternalServerError, "could not read the replay: see the bridge's log")
		return
	}
	jobs, err := s.store.ReplayJobs(r.Context(), id)
	if err != nil {
		s.log.Error("web UI: list a replay's jobs", slog.Int64("replay_id", id), slog.String("error", err.Error()))
		s.fail(w, r, http.StatusInternalServerError, "could not list the replay's jobs: see the bridge's log")
		return
	}
	s.show(w, r, http.StatusOK, "replay.html", fmt.Sprintf("Replay %d", id), "failed",
		map[string]any{"Replay": rp, "Jobs": jobs, "Done": r.URL.Query().Get("done") != ""})
}

// failedEvents returns the newest failedLimit events of channel rejected
// or missing, newest first, and whether there are more. It reads each
// outcome in its index's order and merges them.
func failedEvents(ctx context.Context, store *history.Store, channel string) ([]history.EventSummary, bool, error) {
	var all []history.EventSummary
	more := false
	for _, o := range []string{history.OutcomeRejected, history.OutcomeMissing} {
		p, err := store.List(ctx, history.EventFilter{Channel: channel, Outcomes: []string{o}, Limit: failedLimit})
		if err != nil {
			return nil, false, err
		}
		all = append(all, p.Events...)
		more = more || p.Next != nil
	}
	slices.SortFunc(all, func(a, b history.EventSummary) int {
		if c := b.DispatchedAt.Compare(a.DispatchedAt); c != 0 {
			return c
		}
		return strings.Compare(b.ID, a.ID)
	})
	if len(all) > failedLimit {
		all, more = all[:failedLimit], true
	}
	return all, more, nil
}
