package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/notified/notified/migrations"
)

// River indexes river_job's args and metadata with GIN indexes. A GIN insert
// goes to the index's pending list, and the insert that finds the list over
// gin_pending_list_limit (4MB by default) moves the whole list into the
// index before it returns: 50-150ms, every few seconds at a few thousand
// jobs per second. In a dispatch transaction that stall is the latency tail
// of every event waiting behind it.
//
// So the bridge flushes the pending lists itself, off the dispatch path,
// about once a second while it inserts jobs (gin_clean_pending_list), and
// its dispatch transactions raise their own gin_pending_list_limit so that
// they leave the flushing to it. That needs the bridge's role to own
// river_job's indexes (as the role that ran the migrations does); where it
// does not, the bridge says so once and dispatches as River would alone.

// ginPendingLimit is the dispatch transactions' gin_pending_list_limit, in
// kB, while the cleaner works: room for many seconds of jobs between
// flushes.
const ginPendingLimit = "65536"

// ginCleanInterval is how often the cleaner flushes while jobs are
// inserted.
const ginCleanInterval = time.Second

// ginIndexes returns river_job's GIN indexes, as regclass text.
func (b *Bridge) ginIndexes(ctx context.Context) ([]string, error) {
	rows, err := b.pool.Query(ctx, ginIndexesSQL, migrations.Qualify(b.cfg.Schema, "river_job"))
	var names []string
	if err == nil {
		names, err = pgx.CollectRows(rows, pgx.RowTo[string])
	}
	if err != nil {
		return nil, fmt.Errorf("find river_job's GIN indexes: %w", err)
	}
	return names, nil
}

// cleanGIN flushes the pending lists of indexes.
func (b *Bridge) cleanGIN(ctx context.Context, indexes []string) error {
	for _, ix := range indexes {
		if _, err := b.pool.Exec(ctx, ginCleanSQL, ix); err != nil {
			return fmt.Errorf("flush the pending list of GIN index %s: %w", ix, err)
		}
	}
	return nil
}

// ginCleaner flushes river_job's GIN pending lists about once a second
// while this bridge inserts jobs, until ctx is done. It turns the raised
// limit of the dispatch transactions on once a flush has worked, and off
// again if flushing is not allowed.
func (b *Bridge) ginCleaner(ctx context.Context) {
	defer b.ginCleaning.Store(false)
	var indexes []string
	tick := time.NewTicker(ginCleanInterval)
	defer tick.Stop()
	failures := 0
	for first := true; ; first = false {
		if !first {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			if !b.ginDirty.Swap(false) {
				continue
			}
		}
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := func() error {
			if indexes == nil {
				found, err := b.ginIndexes(cctx)
				if err != nil {
					return err
				}
				indexes = found
			}
			return b.cleanGIN(cctx, indexes)
		}()
		cancel()
		if ctx.Err() != nil {
			return
		}
		var pgErr *pgconn.PgError
		switch {
		case err == nil:
			failures = 0
			b.ginCleaning.Store(len(indexes) > 0)
		case errors.As(err, &pgErr) && pgErr.Code == pgerrcode.InsufficientPrivilege:
			b.ginCleaning.Store(false)
			b.log.Warn("cannot flush river_job's GIN pending lists off the dispatch path: this bridge's role does not own river_job's indexes",
				slog.String("effect", "dispatch latency shows stalls of about 100ms when River's GIN indexes flush"),
				slog.String("fix", "run the bridge as the role that ran the migrations"),
				slog.String("error", err.Error()))
			return
		default:
			// The database is away or busy: dispatches fail or wait too,
			// and flush the lists themselves once they are over the
			// limit. Try again later.
			b.ginCleaning.Store(false)
			b.ginDirty.Store(true)
			indexes = nil
			failures++
			if failures == 1 || failures%60 == 0 {
				b.log.Warn("could not flush river_job's GIN pending lists; retrying", slog.String("error", err.Error()))
			}
		}
	}
}
