package history

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/notified/notified/lanes"
)

// Status is the state of the pipeline of one channel.
type Status struct {
	Channel string `json:"channel"`
	// Backlog is the number of events announced and not dispatched yet.
	Backlog int64 `json:"backlog"`
	// OldestPending is when the oldest of them was announced.
	OldestPending *time.Time `json:"oldest_pending_at"`
	// OldestPendingAge is how long it has waited, in seconds.
	OldestPendingAge *float64 `json:"oldest_pending_age_seconds"`
	// LastMinute and LastHour count the events recorded in that time, by
	// outcome.
	LastMinute map[string]int64 `json:"last_minute"`
	LastHour   map[string]int64 `json:"last_hour"`
	// Window is how far back finished jobs are counted, in seconds.
	Window float64 `json:"window_seconds"`
	// Handlers are the job counts per handler: every live job, and the jobs
	// finalized within the window.
	Handlers []HandlerStatus `json:"handlers"`
	// DeadLetters counts the dead letters finalized within the window: jobs
	// discarded or cancelled and not replayed or retried since.
	DeadLetters int64 `json:"dead_letters"`
	// Lanes count, per handler kind, the lanes of ordered routes that have
	// jobs, those stopped at a failure, and the jobs waiting in them.
	Lanes []lanes.KindSummary `json:"lanes"`
	// Bridges are the bridges registered for the channel.
	Bridges []Bridge `json:"bridges"`
	// At is the database's time when the status was read.
	At time.Time `json:"at"`
}

// HandlerStatus counts one handler's jobs by state.
type HandlerStatus struct {
	Handler string `json:"handler"`
	// Webhook is the URL of a webhook route's jobs: webhook routes share
	// their kind, and each URL is a handler of its own.
	Webhook string           `json:"webhook,omitempty"`
	States  map[string]int64 `json:"states"`
	// Failing is true when the handler has jobs retrying, or jobs that
	// ended discarded or cancelled within the window.
	Failing bool `json:"failing"`
	// LastError is the newest error of a failing job, and when it happened.
	LastError   *string    `json:"last_error"`
	LastErrorAt *time.Time `json:"last_error_at"`
}

// Bridge is a running (or lately running) bridge.
type Bridge struct {
	ID           string    `json:"id"`
	Host         string    `json:"host"`
	PID          int       `json:"pid"`
	Version      string    `json:"version"`
	Channel      string    `json:"channel"`
	StartedAt    time.Time `json:"started_at"`
	SeenAt       time.Time `json:"seen_at"`
	PollInterval float64   `json:"poll_interval_seconds"`
	// Alive is true when the bridge checked in within three poll intervals.
	Alive bool `json:"alive"`
}

// Status reads the pipeline's state for channel; finished jobs are counted
// over the last window (24 hours when window is 0).
func (s *Store) Status(ctx context.Context, channel string, window time.Duration) (*Status, error) {
	if window <= 0 {
		window = 24 * time.Hour
	}
	st := &Status{Channel: channel, LastMinute: map[string]int64{}, LastHour: map[string]int64{},
		Window: window.Seconds(), Handlers: []HandlerStatus{}, Bridges: []Bridge{}}

	if err := s.db.QueryRow(ctx, s.sql(statusBacklogSQL), channel).
		Scan(&st.At, &st.Backlog, &st.OldestPending, &st.OldestPendingAge); err != nil {
		return nil, fmt.Errorf("read backlog: %w", err)
	}

	rows, err := s.db.Query(ctx, s.sql(statusOutcomesSQL), channel)
	if err != nil {
		return nil, fmt.Errorf("count recent events: %w", err)
	}
	var outcome string
	var minute, hour int64
	if _, err := pgx.ForEachRow(rows, []any{&outcome, &minute, &hour}, func() error {
		st.LastMinute[outcome], st.LastHour[outcome] = minute, hour
		return nil
	}); err != nil {
		return nil, fmt.Errorf("count recent events: %w", err)
	}

	rows, err = s.db.Query(ctx, s.sql(statusHandlersSQL), channel, window)
	if err != nil {
		return nil, fmt.Errorf("count jobs by handler: %w", err)
	}
	var (
		kind, url, state string
		n, failing       int64
		lastErr          *string
		lastErrAt        *time.Time
	)
	type handler struct{ kind, url string }
	byHandler := map[handler]int{}
	if _, err := pgx.ForEachRow(rows, []any{&kind, &url, &state, &n, &failing, &lastErr, &lastErrAt}, func() error {
		i, ok := byHandler[handler{kind, url}]
		if !ok {
			i = len(st.Handlers)
			byHandler[handler{kind, url}] = i
			st.Handlers = append(st.Handlers, HandlerStatus{Handler: kind, Webhook: url, States: map[string]int64{}})
		}
		h := &st.Handlers[i]
		h.States[state] = n
		if failing > 0 {
			h.Failing = true
		}
		if lastErr != nil && (h.LastErrorAt == nil || (lastErrAt != nil && lastErrAt.After(*h.LastErrorAt))) {
			h.LastError, h.LastErrorAt = lastErr, lastErrAt
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("count jobs by handler: %w", err)
	}

	st.DeadLetters, err = s.CountDeadLetters(ctx, channel, st.At.Add(-window))
	if err != nil {
		return nil, err
	}

	if st.Lanes, err = lanes.NewStore(s.db, s.schema).Summary(ctx, channel); err != nil {
		return nil, err
	}
	if st.Lanes == nil {
		st.Lanes = []lanes.KindSummary{}
	}

	rows, err = s.db.Query(ctx, s.sql(statusBridgesSQL), channel)
	if err != nil {
		return nil, fmt.Errorf("list bridges: %w", err)
	}
	st.Bridges, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (Bridge, error) {
		var b Bridge
		err := row.Scan(&b.ID, &b.Host, &b.PID, &b.Version, &b.Channel, &b.StartedAt, &b.SeenAt, &b.PollInterval, &b.Alive)
		return b, err
	})
	if err != nil {
		return nil, fmt.Errorf("list bridges: %w", err)
	}
	return st, nil
}
