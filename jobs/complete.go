package jobs

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
)

// completeArgs stands for the args of any job completed by CompleteTx,
// which reads only the job's row.
type completeArgs struct{}

func (completeArgs) Kind() string { return "" }

// CompleteTx completes the job of ev as part of tx, the handler's own
// transaction in the database of River's tables: what the handler writes in
// tx and the job's completion commit together, or neither does. output, when
// not nil, is recorded as the job's output, as [Success] would record it.
//
// For a job of an ordered route, the next job of its lane is released in tx
// too, so it can start as soon as tx commits, instead of when River's
// completer next records a batch of completions (every 250 ms when few
// wait): a lane whose handlers complete this way steps at the pace of its
// handlers.
//
// Call it from a handler, then commit tx and return [Success] with no
// payload (an error returned after a committed completion has no effect).
// If tx rolls back, the completion does too, and the job ends as the
// handler's result says.
func CompleteTx(ctx context.Context, tx pgx.Tx, ev Event, output any) error {
	if ev.Job == nil {
		return errors.New("jobs.CompleteTx: the event has no job; call it from a handler with the event it was given")
	}
	if output != nil {
		if err := river.RecordOutput(ctx, output); err != nil {
			return fmt.Errorf("record output of %s for event %s: %w", ev.Job.Kind, ev.ID, err)
		}
	}
	if _, err := river.JobCompleteTx[*riverpgxv5.Driver](ctx, tx, &river.Job[completeArgs]{JobRow: ev.Job}); err != nil {
		return fmt.Errorf("complete job %d (%s) of event %s in the handler's transaction: %w", ev.Job.ID, ev.Job.Kind, ev.ID, err)
	}
	return nil
}
