package bench_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/notified/notified/internal/bench"
	"github.com/notified/notified/internal/pgcluster"
)

// TestBenchUsesCommitTimestampsWhereTheServerTracksThem runs the bench on a
// server of its own with track_commit_timestamp on: every time is then a
// commit timestamp, and the figures read the same way.
func TestBenchUsesCommitTimestampsWhereTheServerTracksThem(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c, err := pgcluster.Start(ctx, pgcluster.Options{Settings: map[string]string{"track_commit_timestamp": "on"}})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, c.Stop(context.Background())) })
	pool, err := pgxpool.New(ctx, c.URL())
	require.NoError(t, err)
	t.Cleanup(pool.Close)

	steady, err := run(t, pool, bench.Options{Mode: bench.Steady, Rate: 300, Duration: 2 * time.Second, Producers: 2, NoProducerCost: true})
	require.NoError(t, err)
	require.Equal(t, "commit", steady.Clock)
	require.True(t, steady.Verified)
	l := steady.Latency
	require.NotNil(t, l)
	require.Equal(t, steady.Events, l.Events)
	require.Positive(t, l.P50)
	require.LessOrEqual(t, l.P50, l.P90)
	require.LessOrEqual(t, l.P90, l.P99)
	require.LessOrEqual(t, l.P99, l.Max)
	require.True(t, l.KeptUp)
	require.Positive(t, steady.Baseline.JobsPerSec)

	burst, err := run(t, pool, bench.Options{Events: 2000, Routes: 2, Work: true, NoProducerCost: true})
	require.NoError(t, err)
	require.Equal(t, "commit", burst.Clock)
	require.True(t, burst.Verified)
	require.Positive(t, burst.Bridge.EventsPerSec)
	require.Positive(t, burst.Baseline.JobsPerSec)
	require.NotNil(t, burst.Handled)
	require.GreaterOrEqual(t, burst.Handled.Seconds, burst.Bridge.Seconds, "handlers finish after their jobs are inserted")
}
