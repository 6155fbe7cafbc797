package dbtx_test

import (
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

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

func TestInSchema(t *testing.T) {
	t.Parallel()

	const q = "SELECT count(*) FROM {schema}.notified_outbox o JOIN {schema}.notified_dispatch d USING (channel)"
	require.Equal(t, `SELECT count(*) FROM "app".notified_outbox o JOIN "app".notified_dispatch d USING (channel)`,
		dbtx.InSchema("app", q))
	require.Equal(t, "SELECT count(*) FROM notified_outbox o JOIN notified_dispatch d USING (channel)",
		dbtx.InSchema("", q), "no schema: the names resolve through the search_path")
	require.Equal(t, `CREATE SCHEMA IF NOT EXISTS "Mixed""Case"`,
		dbtx.InSchema(`Mixed"Case`, "CREATE SCHEMA IF NOT EXISTS {schema}"), "the schema is quoted")
}
