package replay

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/notified/notified/bridge"
)

// SnapshotSQL returns the statement, with its named arguments, that
// takes the snapshot of a replay of sel, for plans in tests.
func SnapshotSQL(ctx context.Context, pool *pgxpool.Pool, cfg bridge.Config, sel Selector) (string, pgx.NamedArgs, error) {
	r, err := newReplayer(ctx, pool, cfg, sel, Options{DryRun: true})
	if err != nil {
		return "", nil, err
	}
	return r.snapshot, r.args, nil
}
