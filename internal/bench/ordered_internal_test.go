package bench

import (
	"encoding/json"
	"strconv"
	"testing"

	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/notified/notified/jobs"
)

// benchEvent is the job of the bench's event of user i for kind.
func benchEvent(kind string, i int) jobs.Event {
	id := strconv.Itoa(i)
	return jobs.Event{ID: id, Data: json.RawMessage(`{"id":` + id + `,"data":{"user_id":` + id + `}}`),
		Job: &rivertype.JobRow{Kind: kind, Attempt: 1}}
}

func TestOrderCheckCountsOverlapsAndOutOfOrderStartsPerLane(t *testing.T) {
	t.Parallel()
	c := newOrderCheck(10)
	start := func(kind string, i int) func() {
		t.Helper()
		done, err := c.start(benchEvent(kind, i))
		require.NoError(t, err)
		return done
	}
	// Lane (a, 1): 1, 11, 21 one after another; lane (a, 2) and lane
	// (b, 1) run at the same time as it: no fault.
	d1, d2, d3 := start("a", 1), start("a", 2), start("b", 1)
	d1()
	start("a", 11)()
	start("a", 21)()
	d2()
	d3()
	started, overlaps, outOfOrder := c.counts()
	require.Equal(t, []int64{5, 0, 0}, []int64{started, overlaps, outOfOrder})

	// 31 starts while 41 runs in the same lane, and after it.
	d41 := start("a", 41)
	start("a", 31)()
	d41()
	started, overlaps, outOfOrder = c.counts()
	require.Equal(t, []int64{7, 1, 1}, []int64{started, overlaps, outOfOrder})

	// A retry of the lane's last job keeps its place: in order. The retry
	// of a job the lane had gone past is not; nor is a first attempt of
	// the same event again (a duplicate job).
	retry := func(i, attempt int) {
		ev := benchEvent("c", i)
		ev.Job.Attempt = attempt
		done, err := c.start(ev)
		require.NoError(t, err)
		done()
	}
	retry(3, 1)
	retry(3, 2)
	retry(3, 3)
	retry(13, 1)
	started, overlaps, outOfOrder = c.counts()
	require.Equal(t, []int64{11, 1, 1}, []int64{started, overlaps, outOfOrder})
	retry(13, 1)
	retry(3, 4)
	started, overlaps, outOfOrder = c.counts()
	require.Equal(t, []int64{13, 1, 3}, []int64{started, overlaps, outOfOrder})

	_, err := c.start(jobs.Event{ID: "7", Data: json.RawMessage(`[]`), Job: &rivertype.JobRow{Kind: "a"}})
	require.ErrorContains(t, err, "order check: decode event 7: ")
}
