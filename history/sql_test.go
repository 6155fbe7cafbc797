package history

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

// Prune stops when a statement deletes fewer than pruneBatch rows: each
// prune query must delete up to that many.
func TestPruneQueriesDeletePruneBatch(t *testing.T) {
	t.Parallel()

	for _, q := range []string{pruneDispatchSQL, pruneJobsSQL, pruneReplaysSQL, pruneBridgesSQL} {
		require.Contains(t, q, " LIMIT "+strconv.Itoa(pruneBatch)+" ")
	}
}

// A filter that is off leaves no trace in the query, so that each
// combination of filters has plans of its own.
func TestDeadLettersQueryHasOnlyTheFiltersOn(t *testing.T) {
	t.Parallel()

	q, args := deadLettersQuery("", DeadLetterFilter{Channel: "events", Handlers: []string{}, JobIDs: []int64{}})
	require.Equal(t, pgx.NamedArgs{"channel": "events"}, args)
	require.NotContains(t, q, "{")
	for _, part := range []string{deadLettersOfHandlers, deadLettersSince, deadLettersOfJobs, deadLettersLimit} {
		require.NotContains(t, q, part)
	}
	require.True(t, strings.HasSuffix(q, "ORDER BY d.finalized_at DESC, d.job_id DESC"), q)

	since := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	q, args = deadLettersQuery("app", DeadLetterFilter{Channel: "events", Handlers: []string{"a"}, Since: since, JobIDs: []int64{7}, Limit: 3})
	require.Equal(t, pgx.NamedArgs{"channel": "events", "handlers": []string{"a"}, "since": since, "job_ids": []int64{7}, "limit": int64(3)}, args)
	require.NotContains(t, q, "{")
	for _, part := range []string{deadLettersOfHandlers, deadLettersSince, deadLettersOfJobs, `"app".notified_jobs d`, `"app".river_job l`, `"app".notified_job l`} {
		require.Contains(t, q, part)
	}
	require.True(t, strings.HasSuffix(q, deadLettersLimit), q)
}
