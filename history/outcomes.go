package history

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// StateRetryable is the state of a River job that failed an attempt and
// waits for its next.
const StateRetryable = "retryable"

// HandlerOutcome counts one handler's jobs in one state.
type HandlerOutcome struct {
	Handler string
	// Webhook is the URL of a webhook route's jobs (webhook routes share
	// their kind, so each URL is counted apart); empty for other handlers.
	Webhook string
	// State is completed, cancelled or discarded for jobs finalized in the
	// window, retryable for jobs waiting for their next attempt now.
	State string
	Jobs  int64
}

// HandlerOutcomes counts the jobs of channel by handler (and webhook URL)
// and state: those
// finalized at or after since (completed, cancelled, discarded), whether
// River still has them or not, and those retryable now. A pair with no job
// is left out. Handlers, and so the pairs, are bounded by the routes that
// created the jobs.
func (s *Store) HandlerOutcomes(ctx context.Context, channel string, since time.Time) ([]HandlerOutcome, error) {
	rows, err := s.db.Query(ctx, s.sql(handlerOutcomesSQL), channel, since)
	if err != nil {
		return nil, fmt.Errorf("count jobs by handler and state: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[HandlerOutcome])
	if err != nil {
		return nil, fmt.Errorf("count jobs by handler and state: %w", err)
	}
	return out, nil
}
