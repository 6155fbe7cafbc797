package bridge

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ReplaySnapshotSQL returns the statement, with its named arguments, that
// takes the snapshot of a replay of sel, for plans in tests.
func ReplaySnapshotSQL(ctx context.Context, pool *pgxpool.Pool, cfg Config, sel ReplaySelector) (string, pgx.NamedArgs, error) {
	r, err := newReplayer(ctx, pool, cfg, sel, ReplayOptions{DryRun: true})
	if err != nil {
		return "", nil, err
	}
	return r.snapshot, r.args, nil
}
