package bridge

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Readiness is the bridge's state as /readyz reports it.
type Readiness struct {
	// Ready is true when the bridge is doing its job.
	Ready bool `json:"ready"`
	// Reasons say why it is not.
	Reasons []string `json:"reasons,omitempty"`
	// Database is true when a connection answered a ping.
	Database bool `json:"database"`
	// Listening is true when the listener is connected (always false with
	// PollOnly).
	Listening bool `json:"listening"`
	PollOnly  bool `json:"poll_only"`
	// LastCatchUp is when the outbox was last drained completely.
	LastCatchUp *time.Time `json:"last_catch_up"`
}

// ErrNotReady is wrapped by Ready's error.
var ErrNotReady = errors.New("bridge not ready")

// Ready checks that the bridge is doing its job: a pool connection answers
// a ping, the listener is connected (unless PollOnly), and the outbox was
// drained completely within the last three poll intervals. The error, if
// any, wraps ErrNotReady and names every reason.
func (b *Bridge) Ready(ctx context.Context) (Readiness, error) {
	r := Readiness{PollOnly: b.cfg.PollOnly, Listening: b.Listening()}
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := b.pool.Ping(pctx); err != nil {
		r.Reasons = append(r.Reasons, "database does not answer: "+err.Error())
	} else {
		r.Database = true
	}
	switch {
	case b.cfg.PollOnly:
	case b.notificationsLost.Load():
		r.Reasons = append(r.Reasons, "the listener receives no notifications (a transaction-pooling proxy such as PgBouncer in transaction mode?): "+
			"connect directly or in session mode, or use --poll-only")
	case !r.Listening:
		r.Reasons = append(r.Reasons, fmt.Sprintf("listener is not connected to channel %q", b.cfg.Channel))
	}
	if problem := b.tableProblemNow(); problem != "" {
		r.Reasons = append(r.Reasons, problem)
	}
	limit := 3 * b.cfg.PollInterval
	if ns := b.lastCatchUp.Load(); ns == 0 {
		r.Reasons = append(r.Reasons, "the outbox has not been drained since start")
	} else {
		t := time.Unix(0, ns)
		r.LastCatchUp = &t
		if age := time.Since(t); age > limit {
			r.Reasons = append(r.Reasons, fmt.Sprintf("last complete drain of the outbox was %s ago, more than 3 poll intervals (%s)",
				age.Round(time.Millisecond), limit))
		}
	}
	r.Ready = len(r.Reasons) == 0
	if !r.Ready {
		return r, fmt.Errorf("%w: %v", ErrNotReady, r.Reasons)
	}
	return r, nil
}
