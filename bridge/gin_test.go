package bridge_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/stretchr/testify/require"

	"github.com/notified/notified/internal/testdb"
	"github.com/notified/notified/jobs"
)

// pendingGIN returns the entries waiting in the pending lists of river_job's
// GIN indexes, by index name, read with pgstattuple.
func pendingGIN(t *testing.T, db *testdb.DB) map[string]int64 {
	t.Helper()
	ctx := context.Background()
	// The extension is the database's; creating it is idempotent and
	// harmless to other tests.
	if _, err := db.Pool.Exec(ctx, "CREATE EXTENSION IF NOT EXISTS pgstattuple SCHEMA public"); err != nil {
		// Another test binary may be creating it at the same moment.
		require.Equal(t, 1, testdb.Count(t, db.Pool, "SELECT count(*) FROM pg_extension WHERE extname = 'pgstattuple'"), err.Error())
	}
	rows, err := db.Pool.Query(ctx, `SELECT c.relname, (public.pgstatginindex(c.oid)).pending_tuples
		FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam
		WHERE i.indrelid = $1::regclass AND a.amname = 'gin'`, pgx.Identifier{db.Schema, "river_job"}.Sanitize())
	require.NoError(t, err)
	out := map[string]int64{}
	for rows.Next() {
		var name string
		var n int64
		require.NoError(t, rows.Scan(&name, &n))
		out[name] = n
	}
	require.NoError(t, rows.Err())
	require.Len(t, out, 2, "River indexes args and metadata with GIN")
	return out
}

func TestGINPendingListsAreFlushedOffTheDispatchPath(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.Route(t, "signup", "welcome")
	ctx := context.Background()

	// Jobs inserted the usual way wait in the pending lists until one grows
	// past gin_pending_list_limit.
	client, err := river.NewClient(riverpgxv5.New(tb.DB.Pool), &river.Config{Schema: tb.DB.Schema})
	require.NoError(t, err)
	params := make([]river.InsertManyParams, 100)
	for i := range params {
		params[i] = river.InsertManyParams{Args: baselineArgs{Payload: jobs.Payload{EventID: fmt.Sprint(i), Data: []byte(`{}`)}},
			InsertOpts: &river.InsertOpts{Metadata: []byte(`{"other": true}`)}}
	}
	_, err = client.InsertMany(ctx, params)
	require.NoError(t, err)
	for name, n := range pendingGIN(t, tb.DB) {
		require.Positive(t, n, "index %s has its entries pending", name)
	}

	// A bridge that inserts jobs flushes them, its own and those before.
	tb.Start(t, nil, tb.Config)
	names := make([]string, 300)
	for i := range names {
		names[i] = "signup"
	}
	tb.InsertEvents(t, names...)
	tb.WaitRecorded(t, len(names))
	testdb.WaitFor(t, 10*time.Second, func() (bool, string) {
		p := pendingGIN(t, tb.DB)
		for _, n := range p {
			if n > 0 {
				return false, fmt.Sprintf("pending entries: %v", p)
			}
		}
		return true, ""
	})
}

func TestGINCleanerNeedsToOwnRiverIndexes(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.Route(t, "signup", "welcome")
	db := tb.DB
	pool := roleWithTableRights(t, db, db.Schema+"_notowner")

	logs := &syncBuffer{}
	cfg := tb.Config
	cfg.Logger = jsonLogger(logs)
	tb.Start(t, pool, cfg)
	ids := tb.InsertEvents(t, "signup", "signup", "signup")
	tb.WaitRecorded(t, len(ids))
	tb.requireExactlyOnce(t, map[string][]string{ids[0]: {"welcome"}, ids[1]: {"welcome"}, ids[2]: {"welcome"}})
	testdb.WaitFor(t, 10*time.Second, func() (bool, string) {
		for _, rec := range logRecords(t, logs.String()) {
			msg, _ := rec["msg"].(string)
			if rec["level"] == "WARN" && msg == "cannot flush river_job's GIN pending lists off the dispatch path: this bridge's role does not own river_job's indexes" {
				require.Equal(t, "run the bridge as the role that ran the migrations", rec["fix"])
				require.Contains(t, rec["error"], "must be owner of index river_job_args_index")
				require.Contains(t, rec["fix"], "run the bridge as the role that ran the migrations")
				return true, ""
			}
		}
		return false, "no warning about the GIN cleaner in:\n" + logs.String()
	})
	requireNoErrorLogs(t, logs)
}
