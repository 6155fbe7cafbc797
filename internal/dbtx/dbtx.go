// Package dbtx names what notified's packages run their queries through.
//
// It imports nothing but pgx, so that every package, the producers' publish
// included, can use it without linking River or the bridge.
package dbtx

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// DBTX runs queries: a *pgxpool.Pool, a *pgx.Conn or a pgx.Tx, so that a
// caller chooses whether what it is given runs on its own or in the
// caller's transaction. It is sqlc's DBTX.
type DBTX interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}
