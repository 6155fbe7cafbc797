package web

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/notified/notified/history"
	"github.com/notified/notified/lanes"
	"github.com/notified/notified/replay"
)

// maxReason is the longest reason a form may give, in bytes.
const maxReason = 1000

// actionForm reads a replay form's reason and channel. The reason is
// required: it is recorded with the replay.
func actionForm(r *http.Request) (reason string, err error) {
	r.Body = http.MaxBytesReader(nil, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		return "", fmt.Errorf("the form could not be read (%w): nothing was replayed", err)
	}
	reason = strings.TrimSpace(r.PostForm.Get("reason"))
	if reason == "" {
		return "", errors.New("a replay needs a reason, for the record: say why in the reason field; nothing was replayed")
	}
	if len(reason) > maxReason {
		return "", fmt.Errorf("the reason is %d bytes long: keep it under %d; nothing was replayed", len(reason), maxReason)
	}
	return reason, nil
}

// requester says who asked for a replay made in the browser, for the
// record: the user signed in, if any, and where from.
func (s *Server) requester(r *http.Request) string {
	who := "web UI"
	if u := s.sessionUser(r); u != "" {
		who = u + " (web UI)"
	} else if u, _, ok := r.BasicAuth(); ok && s.opts.User != "" {
		who = u + " (web UI)"
	}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		who += " from " + host
	}
	return who
}

// retryDeadLetter serves POST /failed/retry: it replays the dead letter
// job_id (its event, for its handler), as `dead-letters retry` does, and
// shows the replay.
func (s *Server) retryDeadLetter(w http.ResponseWriter, r *http.Request) {
	reason, err := actionForm(r)
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, err.Error())
		return
	}
	id, err := strconv.ParseInt(r.PostForm.Get("job_id"), 10, 64)
	if err != nil || id <= 0 {
		s.fail(w, r, http.StatusBadRequest, fmt.Sprintf("%q is not a job id: nothing was replayed", r.PostForm.Get("job_id")))
		return
	}
	channel := s.formChannel(r)
	dead, err := s.store.DeadLetters(r.Context(), history.DeadLetterFilter{Channel: channel, JobIDs: []int64{id}})
	if err != nil {
		s.log.Error("web UI: look up a dead letter", slog.Int64("job_id", id), slog.String("error", err.Error()))
		s.fail(w, r, http.StatusInternalServerError, "could not look up the job: see the bridge's log")
		return
	}
	if len(dead) == 0 {
		s.fail(w, r, http.StatusConflict, fmt.Sprintf("job %d is not a dead letter of channel %q (not found, not discarded or cancelled, or retried since): nothing was replayed", id, channel))
		return
	}
	s.runReplay(w, r, channel, replay.Selector{Jobs: []int64{id}}, reason)
}

// resumeLane serves POST /failed/resume: it resumes the stopped lane of
// kind and key on the form's channel, past its failed job or retrying it
// first (retry=on), as `lanes resume` does, and sends the browser back to
// /failed.
func (s *Server) resumeLane(w http.ResponseWriter, r *http.Request) {
	reason, err := actionForm(r)
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, strings.Replace(err.Error(), "a replay needs", "resuming a lane needs", 1))
		return
	}
	p := lanes.ResumeParams{Channel: s.formChannel(r), Kind: r.PostForm.Get("kind"), Key: r.PostForm.Get("key"),
		RetryFailed: r.PostForm.Get("retry") == "on", RequestedBy: s.requester(r), Reason: reason}
	if p.Kind == "" || p.Key == "" {
		s.fail(w, r, http.StatusBadRequest, "the form names no lane (kind and key): nothing was resumed")
		return
	}
	job, err := lanes.NewStore(s.opts.Pool, s.opts.Events.Schema).Resume(r.Context(), p)
	switch {
	case errors.Is(err, lanes.ErrNoLane), errors.Is(err, lanes.ErrNotStopped), errors.Is(err, lanes.ErrFailedJobGone):
		s.fail(w, r, http.StatusConflict, err.Error()+": nothing was resumed")
		return
	case err != nil:
		s.log.Error("web UI: resume a lane", slog.String("kind", p.Kind), slog.String("error", err.Error()))
		s.fail(w, r, http.StatusInternalServerError, "could not resume the lane: see the bridge's log")
		return
	}
	s.log.Info("web UI: lane resumed", slog.String("kind", p.Kind), slog.String("key", p.Key), slog.Int64("failed_job_id", job),
		slog.Bool("retried", p.RetryFailed), slog.String("requested_by", p.RequestedBy))
	v := url.Values{"resumed": {fmt.Sprintf("lane %s of %s", p.Key, p.Kind)}}
	if p.Channel != s.opts.Events.WithDefaults().Channel {
		v.Set("channel", p.Channel)
	}
	http.Redirect(w, r, "/failed?"+v.Encode(), http.StatusSeeOther)
}

// replayEvent serves POST /failed/replay: it replays the event event_id
// for every route its name has today, as `replay --id` does, and shows the
// replay.
func (s *Server) replayEvent(w http.ResponseWriter, r *http.Request) {
	reason, err := actionForm(r)
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, err.Error())
		return
	}
	id := r.PostForm.Get("event_id")
	if id == "" {
		s.fail(w, r, http.StatusBadRequest, "the form names no event: replay from the failed page or an event's page; nothing was replayed")
		return
	}
	s.runReplay(w, r, s.formChannel(r), replay.Selector{IDs: []string{id}}, reason)
}

// formChannel is the channel a form posts, or the configured one.
func (s *Server) formChannel(r *http.Request) string {
	if ch := r.PostForm.Get("channel"); ch != "" {
		return ch
	}
	return s.opts.Events.WithDefaults().Channel
}

// runReplay replays sel on channel with the pool's own role, records it
// like the command line's replays, and sends the browser to the replay's
// page.
func (s *Server) runReplay(w http.ResponseWriter, r *http.Request, channel string, sel replay.Selector, reason string) {
	cfg := s.opts.Events
	cfg.Channel = channel
	res, err := replay.Run(r.Context(), s.opts.Pool, cfg, sel, replay.Options{Reason: reason, RequestedBy: s.requester(r), PlanLimit: 20})
	switch {
	case err == nil:
		s.log.Info("web UI: replayed", slog.Int64("replay_id", res.ReplayID), slog.Int("jobs", res.Jobs),
			slog.String("requested_by", s.requester(r)))
		http.Redirect(w, r, fmt.Sprintf("/replays/%d?done=1", res.ReplayID), http.StatusSeeOther)
	case res != nil && res.ReplayID != 0:
		s.log.Error("web UI: replay stopped", slog.Int64("replay_id", res.ReplayID), slog.String("error", err.Error()))
		s.fail(w, r, http.StatusInternalServerError, fmt.Sprintf("replay %d stopped after %d jobs: see the bridge's log", res.ReplayID, res.Jobs))
	case errors.Is(err, replay.ErrNothingToReplay), errors.Is(err, replay.ErrUnknownHandler):
		msg := err.Error() + ": nothing was recorded"
		if res != nil && len(res.Skipped) > 0 {
			msg = fmt.Sprintf("nothing to replay: %s: nothing was recorded", res.Skipped[0].Reason)
		}
		s.fail(w, r, http.StatusUnprocessableEntity, msg)
	default:
		s.log.Error("web UI: replay", slog.String("error", err.Error()))
		s.fail(w, r, http.StatusInternalServerError, "the replay failed and nothing was recorded: see the bridge's log")
	}
}
