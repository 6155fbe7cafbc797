package main

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/notified/notified/bridge"
	"github.com/notified/notified/internal/testdb"
	"github.com/notified/notified/trigger"
)

func TestWorkerRunsHandlerForBridgedEvent(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logger := slog.New(slog.DiscardHandler)

	_, err := trigger.Install(ctx, db.Pool, trigger.Options{Schema: db.Schema, Table: db.Events(), Channel: db.Channel})
	require.NoError(t, err)
	workerDone := make(chan error, 1)
	go func() {
		workerDone <- run(ctx, config{databaseURL: db.URL, schema: db.Schema, events: []string{"user_signed_up"}}, logger)
	}()
	// The worker declares its route at start-up.
	testdb.WaitFor(t, 10*time.Second, func() (bool, string) {
		n := testdb.Count(t, db.Pool, "SELECT count(*) FROM "+db.Schema+".notified_route WHERE kind = 'print_event'")
		return n == 1, "route not declared"
	})
	b, err := bridge.New(ctx, db.Pool, bridge.Config{Schema: db.Schema, Table: db.Events(), Channel: db.Channel,
		PollInterval: 200 * time.Millisecond, Logger: logger})
	require.NoError(t, err)
	bridgeDone := make(chan error, 1)
	go func() { bridgeDone <- b.Run(ctx) }()

	var id string
	require.NoError(t, db.Pool.QueryRow(ctx, "INSERT INTO "+db.Events()+" (name) VALUES ('user_signed_up') RETURNING id::text").Scan(&id))
	testdb.WaitFor(t, 20*time.Second, func() (bool, string) {
		n := testdb.Count(t, db.Pool, "SELECT count(*) FROM "+db.Schema+".river_job WHERE kind = 'print_event' AND state = 'completed' AND metadata->'output'->>'printed' = $1", id)
		return n == 1, fmt.Sprintf("job for event %s not completed", id)
	})
	cancel()
	require.NoError(t, <-workerDone)
	require.NoError(t, <-bridgeDone)
}

func TestWorkerNeedsADatabase(t *testing.T) {
	t.Parallel()
	err := run(context.Background(), config{}, slog.New(slog.DiscardHandler))
	require.EqualError(t, err, "no database: set DATABASE_URL or --database-url")
}
