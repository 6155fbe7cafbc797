// Package dbtx names what notified's packages run their queries through,
// and fills in the schema a query names notified's tables in.
//
// It imports nothing but pgx, so that every package, the producers' publish
// included, can use it without linking River or the bridge.
package dbtx

import (
	"context"
	"strings"

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

// InSchema returns query for the tables in schema. A query names a table of
// notified's as {schema}.name: each {schema} becomes the quoted schema; when
// schema is empty, each "{schema}." is removed instead, so that the names
// resolve through the connection's search_path (its current schema). A
// query that names the schema itself, without a table after it, needs a
// schema that is not empty.
func InSchema(schema, query string) string {
	if schema == "" {
		return strings.ReplaceAll(query, "{schema}.", "")
	}
	return strings.ReplaceAll(query, "{schema}", pgx.Identifier{schema}.Sanitize())
}

// Beginner starts transactions: a *pgxpool.Pool or a *pgx.Conn (or a
// pgx.Tx, for a savepoint), for a function that must run in a transaction
// of its own.
type Beginner interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}
