package dbtx_test

import (
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/notified/notified/internal/dbtx"
)

// A pool, a pool's connection, a connection and a transaction all run
// queries.
var (
	_ dbtx.DBTX = (*pgxpool.Pool)(nil)
	_ dbtx.DBTX = (*pgxpool.Conn)(nil)
	_ dbtx.DBTX = (*pgx.Conn)(nil)
	_ dbtx.DBTX = pgx.Tx(nil)
)
