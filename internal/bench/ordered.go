package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/notified/notified/jobs"
	"github.com/notified/notified/routes"
)

// Ordered delivery: with Options.OrderedKeys, every route of the bench is
// ordered by a key that takes OrderedKeys values over the events, computed
// by the server from the unchanged payload (see orderedBy), so the jobs
// and their args are those of an unordered run. With Work, in burst and
// catchup modes, the run first measures the same workload unordered, then
// empties the tables and measures it ordered: both figures come from one
// process, the same workers and bridges' settings, the same events.

// orderedBy is the ordering key of the bench's routes for n keys: the
// event's user_id modulo n, by jsonpath arithmetic, so the payload (and the
// args of the jobs) stay those of an unordered run.
func orderedBy(n int) string { return "$.data.user_id % " + strconv.Itoa(n) }

// orderRoutes orders every route of the bench by path (empty: unordered).
// The store checks the path with the server. A bridge started afterwards
// sees the change.
func (s *scratch) orderRoutes(ctx context.Context, o Options, path string) error {
	store := routes.NewStore(s.pool, s.schema)
	for i := range o.Routes {
		r := routes.Route{Event: eventName, Kind: routeKind(i), OrderedBy: path}
		if o.Filters {
			r.Where = routeFilter(i)
		}
		if err := store.Add(ctx, r); err != nil {
			return fmt.Errorf("order the bench's routes by %q: %w", path, err)
		}
	}
	return nil
}

// Order is what the no-op handlers saw of the ordered jobs: per lane (a
// route's kind and a key), whether two of its jobs ever ran at once and
// whether they started in the order their events were committed.
type Order struct {
	// Lanes is the number of lanes: keys × routes.
	Lanes int `json:"lanes"`
	// LaneJobs is how many jobs went through a lane, read from their
	// metadata in the database: every job of the ordered phase.
	LaneJobs int `json:"lane_jobs"`
	// Started is how many job starts the handlers checked.
	Started int64 `json:"started"`
	// Overlaps counts the starts of a job while another job of its lane
	// was running.
	Overlaps int64 `json:"overlaps"`
	// CommitOrderChecked says the order was checked: with one producer
	// (burst and catchup by default) events are committed in user_id
	// order, so a lane's jobs must start with increasing user_ids. With
	// several producers the commit order is not known to the bench and
	// only overlaps are counted.
	CommitOrderChecked bool `json:"commit_order_checked"`
	// OutOfOrder counts the starts of a job whose event's user_id is not
	// above the last one started in its lane (with CommitOrderChecked),
	// but for a job starting again (attempt above 1) as the lane's last
	// started: a retry keeps its place.
	OutOfOrder int64 `json:"out_of_order"`
}

// laneOf is a lane as the handlers see it: a route's kind and a key.
type laneOf struct {
	kind string
	key  int64
}

// laneState is what the handlers know of one lane.
type laneState struct {
	running int   // jobs of the lane in a handler now
	last    int64 // the user_id of the last job started
	started bool
}

// orderCheck records, for the handlers of one phase, what they saw of each
// lane. The handlers of both phases do the same work; only the ordered
// phase's counts are reported.
type orderCheck struct {
	keys int64

	mu                            sync.Mutex
	lanes                         map[laneOf]*laneState
	started, overlaps, outOfOrder int64
}

func newOrderCheck(keys int) *orderCheck {
	return &orderCheck{keys: int64(keys), lanes: map[laneOf]*laneState{}}
}

// eventRow is the part of a bench event's row the check reads.
type eventRow struct {
	Data struct {
		UserID int64 `json:"user_id"`
	} `json:"data"`
}

// start records that the job of ev starts and returns what to call when it
// ends.
func (c *orderCheck) start(ev jobs.Event) (func(), error) {
	var row eventRow
	if err := json.Unmarshal(ev.Data, &row); err != nil {
		return nil, fmt.Errorf("order check: decode event %s: %w", ev.ID, err)
	}
	l := laneOf{kind: ev.Job.Kind, key: row.Data.UserID % c.keys}
	c.mu.Lock()
	st := c.lanes[l]
	if st == nil {
		st = &laneState{}
		c.lanes[l] = st
	}
	c.started++
	if st.running > 0 {
		c.overlaps++
	}
	// A job that starts again (a retry, or a rescue after a crash) keeps
	// its place: it is in order if it is the lane's last job started.
	retry := ev.Job.Attempt > 1 && row.Data.UserID == st.last
	if st.started && row.Data.UserID <= st.last && !retry {
		c.outOfOrder++
	}
	st.running++
	st.last, st.started = row.Data.UserID, true
	c.mu.Unlock()
	return func() {
		c.mu.Lock()
		st.running--
		c.mu.Unlock()
	}, nil
}

// counts returns the starts, overlaps and out-of-order starts recorded.
func (c *orderCheck) counts() (started, overlaps, outOfOrder int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.started, c.overlaps, c.outOfOrder
}

// measureUnordered measures the run's workload with its routes unordered,
// into res's unordered figures, and empties the tables for the ordered
// phase.
func (r *runner) measureUnordered(ctx context.Context, res *Result) error {
	un := *res
	r.pass = "unordered"
	if err := r.measure(ctx, &un); err != nil {
		return err
	}
	if err := r.verify(ctx, &un); err != nil {
		return fmt.Errorf("unordered phase: %w", err)
	}
	res.BridgeUnordered, res.HandledUnordered = &un.Bridge, un.Handled
	r.newPhase()
	return r.s.reset(ctx)
}

// newPhase forgets what the producers and handlers counted in a phase.
func (r *runner) newPhase() {
	r.committed.Store(0)
	r.handled.Store(0)
	r.firstCommitMu.Lock()
	r.firstCommit = time.Time{}
	r.firstCommitMu.Unlock()
	if r.o.OrderedKeys > 0 {
		r.order = newOrderCheck(r.o.OrderedKeys)
	}
}

// verifyOrder fills res.Order from the ordered phase's handlers and the
// jobs' metadata, and returns an error if a lane's jobs overlapped or
// started out of order, or if a job went through no lane.
func (r *runner) verifyOrder(ctx context.Context, res *Result) error {
	o := &Order{Lanes: r.o.OrderedKeys * r.o.Routes, CommitOrderChecked: r.o.Work && r.o.Producers == 1}
	if err := r.s.pool.QueryRow(ctx, r.s.sql(laneJobsSQL)).Scan(&o.LaneJobs); err != nil {
		return fmt.Errorf("count the jobs that went through a lane: %w", err)
	}
	res.Order = o
	if want := res.Events * r.o.Routes; o.LaneJobs != want {
		return fmt.Errorf("verify order: %d of %d jobs went through a lane", o.LaneJobs, want)
	}
	if !r.o.Work {
		return nil // no handler ran: nothing more to check
	}
	var outOfOrder int64
	o.Started, o.Overlaps, outOfOrder = r.order.counts()
	if o.CommitOrderChecked {
		o.OutOfOrder = outOfOrder
	}
	switch {
	case o.Overlaps > 0 && o.OutOfOrder > 0:
		return fmt.Errorf("verify order: %d job(s) started while a job of their lane was running, and %d before an event of their lane committed earlier", o.Overlaps, o.OutOfOrder)
	case o.Overlaps > 0:
		return fmt.Errorf("verify order: %d job(s) started while a job of their lane was running", o.Overlaps)
	case o.OutOfOrder > 0:
		return fmt.Errorf("verify order: %d job(s) started before a job of their lane whose event was committed earlier", o.OutOfOrder)
	}
	res.OrderVerified = true
	return nil
}
