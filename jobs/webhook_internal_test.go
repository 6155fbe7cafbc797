package jobs

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestBudgetAllowsItsRateInShortBursts: a budget of 100 a second allows a
// burst of 10, then one more every 10 ms; a rate under 10 a second still
// allows one; a nil budget allows none.
func TestBudgetAllowsItsRateInShortBursts(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	b := newBudget(100)
	n := 0
	for b.take(now) {
		n++
	}
	require.Equal(t, 10, n, "the burst")
	require.False(t, b.take(now.Add(5*time.Millisecond)), "half a token")
	require.True(t, b.take(now.Add(10*time.Millisecond)))
	require.False(t, b.take(now.Add(10*time.Millisecond)))
	n = 0
	for b.take(now.Add(time.Hour)) {
		n++
	}
	require.Equal(t, 10, n, "an idle hour refills the burst, no more")

	slow := newBudget(2)
	require.True(t, slow.take(now))
	require.False(t, slow.take(now.Add(100*time.Millisecond)))
	require.True(t, slow.take(now.Add(600*time.Millisecond)))

	var none *budget
	require.False(t, none.take(now))
}
