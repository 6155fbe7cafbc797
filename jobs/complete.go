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

// CompleteNow completes the job of ev at once, in a transaction of its own
// on the database of the River client working it, as CompleteTx does in
// the handler's transaction: for a handler of an ordered route that writes
// nothing to the database, so that the next job of its lane is released
// at this commit rather than at River's completer's next batch (every 250
// ms when few wait). It costs a commit per job: use it where a lane's
// pace matters more than the database's work (a busy key), not for every
// job of many keys, which River's completer records in far fewer
// statements.
//
// Call it from a handler once its work is done, then return [Success] with
// no payload. If it fails, the job is still running and ends as the
// handler's result says.
func CompleteNow(ctx context.Context, ev Event, output any) error {
	client, err := river.ClientFromContextSafely[pgx.Tx](ctx)
	if err != nil {
		return fmt.Errorf("jobs.CompleteNow: %w", err)
	}
	driver := client.Driver()
	execTx, err := driver.GetExecutor().Begin(ctx)
	if err != nil {
		return fmt.Errorf("complete job of event %s at once: begin: %w", ev.ID, err)
	}
	tx := driver.UnwrapTx(execTx)
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if err := CompleteTx(ctx, tx, ev, output); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("complete job of event %s at once: commit: %w", ev.ID, err)
	}
	return nil
}
