package testdb

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

// Plan is what EXPLAIN (ANALYZE, BUFFERS) says a query read.
type Plan struct {
	Buffers int64           // shared blocks hit or read, whole plan
	Nodes   map[string]bool // "Node Type on Relation" of every node
}

// Explain runs sql with args under EXPLAIN (ANALYZE, BUFFERS) in tx.
func Explain(t testing.TB, tx pgx.Tx, sql string, args ...any) Plan {
	t.Helper()
	var raw []byte
	require.NoError(t, tx.QueryRow(context.Background(), "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) "+sql, args...).Scan(&raw))
	var doc []struct {
		Plan map[string]any `json:"Plan"`
	}
	require.NoError(t, json.Unmarshal(raw, &doc))
	p := Plan{Nodes: map[string]bool{}}
	p.Buffers = int64(doc[0].Plan["Shared Hit Blocks"].(float64) + doc[0].Plan["Shared Read Blocks"].(float64))
	var walk func(n map[string]any)
	walk = func(n map[string]any) {
		name, _ := n["Node Type"].(string)
		if rel, ok := n["Relation Name"].(string); ok {
			name += " on " + rel
		}
		p.Nodes[name] = true
		if kids, ok := n["Plans"].([]any); ok {
			for _, k := range kids {
				walk(k.(map[string]any))
			}
		}
	}
	walk(doc[0].Plan)
	return p
}
