package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/notified/notified/internal/termsafe"
)

// A batch fails as a whole when one of its events cannot become a job: a
// json column holding "\u0000" or a lone surrogate, which River's jsonb args
// refuse, a number beyond numeric's range, a value over a size limit, a row
// whose fetch or insert runs past the statement timeout. Retrying the batch
// would fail the same way for ever and every later event would wait behind
// it. Such a batch is split in halves, each dispatched in a transaction of
// its own, until the bad events are alone; each is then recorded as
// rejected with the database's error, and its neighbours are dispatched in
// the same drain.
//
// What is "bad" is decided by the step that failed and the error's SQLSTATE,
// never by message text: only the fetch of the rows and the insert of their
// jobs read the events' data, and only data exceptions (class 22), program
// limits (class 54), data corruption (XX001) and statement timeouts (57014)
// belong to rows. Anything else (a lost connection, a server shutting down,
// a lock timeout, a deadlock) rolls the batch back and it is retried whole,
// as before.

// selection says which outbox rows a dispatch transaction takes.
type selection struct {
	// seqs, when not nil, are the outbox rows to claim; nil claims the
	// channel's oldest BatchSize rows.
	seqs []int64
	// poison, when set, is the error that the events of seqs caused: they
	// are recorded as rejected with it, without fetching their rows again.
	poison error
}

// The steps of a dispatch transaction that read the events' data.
const (
	stepFetch  = "fetch"
	stepInsert = "insert"
)

// stepError is a failure of a dispatch transaction's step that handles the
// events' data, with the outbox rows the transaction had claimed.
type stepError struct {
	step string
	seqs []int64
	err  error
}

func (e *stepError) Error() string { return e.err.Error() }
func (e *stepError) Unwrap() error { return e.err }

// rowFault reports whether err is a failure caused by the data of the
// events in a batch rather than by the database or the network, and
// returns the outbox rows of the failed batch.
func rowFault(err error) ([]int64, bool) {
	var se *stepError
	if !errors.As(err, &se) || len(se.seqs) == 0 {
		return nil, false
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return nil, false
	}
	switch {
	case strings.HasPrefix(pgErr.Code, "22"), // data_exception
		strings.HasPrefix(pgErr.Code, "54"), // program_limit_exceeded
		pgErr.Code == "XX001",               // data_corrupted
		pgErr.Code == "57014":               // query_canceled: the statement timeout
		return se.seqs, true
	}
	return nil, false
}

// poisonReason is the reason recorded for an event whose row could not
// become a job.
func poisonReason(table, id string, cause error) string {
	msg := cause.Error()
	var pgErr *pgconn.PgError
	if errors.As(cause, &pgErr) {
		msg = pgErr.Message + " (SQLSTATE " + pgErr.Code + ")"
		if pgErr.Code == "57014" {
			msg = "dispatching it alone ran past the batch timeout: " + msg
		}
	}
	return fmt.Sprintf("row %s of %s cannot become a job: %s; fix the row and replay the event", id, table, termsafe.Truncate(msg, 512))
}

// isolate dispatches the outbox rows of a batch that failed with cause, a
// row fault, in halves, splitting again each half that fails the same way,
// until each bad event is alone and recorded as rejected. An error that is
// not a row fault stops it: the rows left are retried whole later.
func (b *Bridge) isolate(ctx context.Context, seqs []int64, cause error) error {
	if len(seqs) == 1 {
		_, err := b.runBatch(ctx, selection{seqs: seqs, poison: cause})
		return err
	}
	b.metrics.isolations.Inc()
	b.log.Warn("batch failed on the data of its events; dispatching it in halves to find them",
		slog.Int("events", len(seqs)), slog.String("error", cause.Error()))
	mid := len(seqs) / 2
	for _, half := range [][]int64{seqs[:mid], seqs[mid:]} {
		_, err := b.runBatch(ctx, selection{seqs: half})
		if err == nil {
			continue
		}
		claimed, ok := rowFault(err)
		if !ok {
			return err
		}
		if err := b.isolate(ctx, claimed, err); err != nil {
			return err
		}
	}
	return nil
}
