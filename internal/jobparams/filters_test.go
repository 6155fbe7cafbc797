package jobparams_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/notified/notified/history"
	"github.com/notified/notified/internal/jobparams"
	"github.com/notified/notified/routes"
)

// TestApplyFilters: the routes of a name split by their filters' results.
func TestApplyFilters(t *testing.T) {
	t.Parallel()
	plain := routes.Route{Event: "order", Kind: "ship"}
	big := routes.Route{Event: "order", Kind: "big", Where: "$.total > 1000"}
	fr := routes.Route{Event: "order", Kind: "fr", Where: `strict $.country == "FR"`}
	rs := []routes.Route{big, fr, plain}

	jobs, skipped := jobparams.ApplyFilters([]routes.Route{plain}, "")
	require.Equal(t, []routes.Route{plain}, jobs)
	require.Nil(t, skipped, "no filter: nothing to say")

	jobs, skipped = jobparams.ApplyFilters(rs, "10")
	require.Equal(t, []routes.Route{big, plain}, jobs)
	require.Equal(t, []string{"", history.SkippedByFilter, ""}, skipped)

	jobs, skipped = jobparams.ApplyFilters(rs, "21")
	require.Equal(t, []routes.Route{fr, plain}, jobs)
	require.Equal(t, []string{history.SkippedByFilterError, "", ""}, skipped)

	jobs, skipped = jobparams.ApplyFilters(rs, "11")
	require.Equal(t, rs, jobs)
	require.Nil(t, skipped, "every filter matched: nothing to say")

	jobs, skipped = jobparams.ApplyFilters(rs, "")
	require.Equal(t, []routes.Route{plain}, jobs, "no result (none evaluated) counts as an error")
	require.Equal(t, []string{history.SkippedByFilterError, history.SkippedByFilterError, ""}, skipped)

	names, paths := jobparams.FilterArgs(map[string][]routes.Route{"order": rs, "a": {{Event: "a", Kind: "k", Where: "$.x == 1"}}, "b": {plain}})
	require.Equal(t, []string{"a", "order", "order"}, names)
	require.Equal(t, []string{"$.x == 1", "$.total > 1000", `strict $.country == "FR"`}, paths)
}
