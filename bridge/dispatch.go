package bridge

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/notified/notified/history"
	"github.com/notified/notified/internal/eventstable"
	"github.com/notified/notified/internal/jobparams"
	"github.com/notified/notified/jobs"
	"github.com/notified/notified/routes"
)

// claimedRow is one outbox row taken by a dispatch transaction.
type claimedRow struct {
	seq       int64
	payload   string
	createdAt time.Time
	age       time.Duration
}

// eventRow is one row of the events table.
type eventRow struct {
	name      *string
	data      []byte
	placement int       // eventstable.RowInline, eventstable.RowLarge or eventstable.RowDeferred
	filters   string    // the results of the filters of its name's routes, in order (see jobparams.ApplyFilters)
	keys      []*string // the lane keys of its name's ordered routes, in order (see jobparams.Lanes)
}

// outcomeRecord is one row for notified_dispatch.
type outcomeRecord struct {
	key       string
	name      *string
	outcome   string // one of history's Outcome constants
	reason    *string
	routes    []routes.Route // every route of the event's name, for the record
	skipped   []string       // per route: "" if it gets a job, else history.SkippedBy...
	jobs      []routes.Route // the routes that get a job
	lanes     []string       // per job, its lane key ("" for none); nil when no job is ordered
	createdAt time.Time
	age       time.Duration // in the outbox when claimed, by the database's clock
	data      []byte
	large     bool // the row is over LargeRowBytes: data is not read
}

// batchResult says what one dispatch transaction did.
type batchResult struct {
	claimed   int
	claimedAt time.Time // when the claim returned, by this process's clock
	recorded  []outcomeRecord
	jobs      int
	requeued  int
	deferred  int   // rows past the batch's byte budget, put back in the outbox
	held      int64 // bytes of row data read
	dupes     int
	steps     []stepTime // how long each step took
}

// stepTime is how long one step of a dispatch transaction took.
type stepTime struct {
	name string
	d    time.Duration
}

// Steps of the dispatch transaction, named for the test hook that simulates a
// crash between them.
const (
	stepClaimed  = "claimed"
	stepFetched  = "fetched"
	stepRecorded = "recorded"
	stepInserted = "inserted"
)

// dispatchBatch is the whole delivery guarantee in one transaction: claim a
// batch of outbox rows, fetch their events, record one outcome per event and
// insert one job per route, then commit. A failure anywhere rolls all of it
// back, and the rows are claimed again later.
func (b *Bridge) dispatchBatch(ctx context.Context, sel selection) (*batchResult, error) {
	res := &batchResult{}
	steps := b.startSteps(res)
	tx, err := b.pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("begin dispatch: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	st := b.table.Load()

	// 1. Claim outbox rows (FOR UPDATE SKIP LOCKED), read the routes and
	// check the events table, in one round trip.
	c, err := b.claim(ctx, tx, st, sel)
	if err != nil {
		return nil, err
	}
	res.claimed, res.claimedAt = len(c.rows), time.Now()
	if len(c.rows) == 0 {
		_ = steps.done("claim", "")
		return res, nil
	}
	if err := steps.done("claim", stepClaimed); err != nil {
		return nil, err
	}

	// 2. Parse each payload as an id of the id column's type.
	p := parseClaimed(st.t, c.rows)
	res.dupes = p.dupes

	// 3. Fetch the rows, measured by the server before they are read, and
	// evaluate the route filters on them there. An event isolated as bad
	// (sel.poison) is not fetched again.
	var found map[string]eventRow
	if sel.poison == nil {
		if found, res.held, err = b.fetch(ctx, tx, st, p.ids, c.seqs, c.routes); err != nil {
			return nil, err
		}
	}
	if err := steps.done("fetch", stepFetched); err != nil {
		return nil, err
	}

	// 4. Decide each event's outcome; put back the rows not visible yet and
	// those past the batch's byte budget.
	d := decide(p, found, c.routes, sel.poison, b.decideRules(st))
	if err := b.putAside(ctx, tx, d, res); err != nil {
		return nil, err
	}

	// 5. Record the outcomes; only the keys recorded now get jobs.
	fresh, err := b.record(ctx, tx, d.records)
	if err != nil {
		return nil, err
	}
	res.dupes += len(d.records) - len(fresh)
	res.recorded = fresh
	if err := steps.done("record", stepRecorded); err != nil {
		return nil, err
	}

	// 6. Insert one job per route of each dispatched event, but for those
	// its filter skipped.
	if res.jobs, err = b.insertJobs(ctx, tx, st, fresh, c.seqs); err != nil {
		return nil, err
	}
	if err := steps.done("insert", stepInserted); err != nil {
		return nil, err
	}

	// 7. Commit: claim, outcomes and jobs become visible together.
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("commit dispatch of %d events: %w", len(c.rows), err)
	}
	_ = steps.done("commit", "")
	if hasLanes(fresh) {
		// Lanes whose head was finalized while this held them were left
		// to the lane waker, which can advance them now.
		b.wakeLanes()
	}
	return res, nil
}

// hasLanes says whether one of records has a job of an ordered route.
func hasLanes(records []outcomeRecord) bool {
	for _, r := range records {
		if r.outcome == history.OutcomeDispatched && r.lanes != nil {
			return true
		}
	}
	return false
}

// claimed is what step 1 of a dispatch transaction read.
type claimed struct {
	rows   []claimedRow // in seq order
	seqs   []int64
	routes map[string][]routes.Route // by event name
}

// dispatchOptions are the settings of a dispatch transaction, before its
// claim. The commit may skip waiting for its WAL flush: what it consumes, the
// outbox row, was made durable by the producer's commit, so a crash before
// the flush loses the whole dispatch (claim, record and jobs) and the rows
// are dispatched again. Custom plans keep the claim on its index as the
// tables grow.
//
// The outbox fills and empties faster than autovacuum analyzes it, so its
// statistics are usually stale; with them the planner would sort the whole
// backlog for each claim. Sorts and bitmap scans are off for the claim
// alone, which leaves the primary key's ordered scan: a claim reads about
// BatchSize entries, whatever the backlog.
//
// A statement that runs longer than BatchTimeout is cancelled by the server
// (SQLSTATE 57014), and the batch is split (see isolate.go); a lock on the
// events table held longer than a quarter of it (an ALTER TABLE, say) fails
// the batch as a whole (SQLSTATE 55P03), to be retried. The wait for the
// channel's lane lock (see laneLockSQL) may last BatchTimeout. While the GIN
// cleaner flushes River's pending lists, the transaction leaves the flushing
// to it (see gin.go).
func (b *Bridge) dispatchOptions() string {
	options := `SELECT set_config('synchronous_commit', 'off', true), set_config('plan_cache_mode', 'force_custom_plan', true),
		set_config('enable_sort', 'off', true), set_config('enable_bitmapscan', 'off', true),
		set_config('statement_timeout', '` + strconv.FormatInt(b.cfg.BatchTimeout.Milliseconds(), 10) + `', true),
		set_config('lock_timeout', '` + strconv.FormatInt(b.cfg.BatchTimeout.Milliseconds(), 10) + `', true)`
	if b.ginCleaning.Load() {
		options += `, set_config('gin_pending_list_limit', '` + ginPendingLimit + `', true)`
	}
	return options
}

// claim runs step 1: the claim, the routes and the table check, pipelined.
// The table is checked after the claim, so that a row claimed here was
// inserted into the table as the check sees it. A changed table rolls the
// claim back (see tablecheck.go).
func (b *Bridge) claim(ctx context.Context, tx pgx.Tx, st *tableState, sel selection) (*claimed, error) {
	batch := &pgx.Batch{}
	batch.Queue(b.dispatchOptions())
	batch.Queue(b.q.laneLock, b.cfg.Channel)
	if sel.seqs != nil {
		batch.Queue(b.q.claimSeqs, b.cfg.Channel, sel.seqs)
	} else {
		batch.Queue(b.q.claim, b.cfg.Channel, b.cfg.BatchSize)
	}
	batch.Queue(afterClaimOptions, strconv.FormatInt(max(b.cfg.BatchTimeout.Milliseconds()/4, 1), 10))
	batch.Queue(b.q.routes)
	batch.Queue(checkTableSQL, st.t.Ident, b.cfg.IDColumn, b.cfg.NameColumn, st.triggerMark)
	br := tx.SendBatch(ctx, batch)
	c, seen, err := readClaim(br, b.cfg.Channel)
	if cerr := br.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("claim batch: %w", cerr)
	}
	if err != nil {
		return nil, err
	}
	if err := b.checkTable(st, seen); err != nil {
		return nil, err
	}
	return c, nil
}

// readClaim reads the results of claim's pipeline.
func readClaim(br pgx.BatchResults, channel string) (*claimed, tableSeen, error) {
	var seen tableSeen
	if _, err := br.Exec(); err != nil {
		return nil, seen, fmt.Errorf("set dispatch options: %w", err)
	}
	rows, _ := br.Query()
	ordered := rows.Next()
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, seen, fmt.Errorf("take the lane lock of channel %q: %w", channel, err)
	}
	rows, _ = br.Query()
	claimedRows, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (claimedRow, error) {
		var c claimedRow
		err := row.Scan(&c.seq, &c.payload, &c.createdAt, &c.age)
		return c, err
	})
	if err != nil {
		return nil, seen, fmt.Errorf("claim outbox rows of channel %q: %w", channel, err)
	}
	if _, err := br.Exec(); err != nil {
		return nil, seen, fmt.Errorf("reset planner options: %w", err)
	}
	rows, _ = br.Query()
	allRoutes, err := routes.ScanList(rows)
	if err != nil {
		return nil, seen, fmt.Errorf("read routes: %w", err)
	}
	if seen, err = scanTableCheck(br.QueryRow()); err != nil {
		return nil, seen, err
	}
	slices.SortFunc(claimedRows, func(x, y claimedRow) int { return cmp.Compare(x.seq, y.seq) })
	c := &claimed{rows: claimedRows, seqs: make([]int64, len(claimedRows)), routes: map[string][]routes.Route{}}
	for i, r := range claimedRows {
		c.seqs[i] = r.seq
	}
	for _, r := range allRoutes {
		if !ordered {
			// Made ordered since the lane lock was not taken: its jobs
			// are ordered from the next batch on.
			r.OrderedBy = ""
		}
		c.routes[r.Event] = append(c.routes[r.Event], r)
	}
	return c, seen, nil
}

// parsed is what step 2 made of the claimed payloads.
type parsed struct {
	ids      []string              // canonical ids, in claim order
	byKey    map[string]claimedRow // the claimed row of each id or record key
	rejected []outcomeRecord       // payloads that are not ids
	dupes    int                   // payloads repeated in the batch
}

// parseClaimed parses each claimed payload as an id of t; a payload that is
// not one is recorded as rejected and does not touch its neighbours.
func parseClaimed(t *eventstable.Table, rows []claimedRow) parsed {
	p := parsed{ids: make([]string, 0, len(rows)), byKey: make(map[string]claimedRow, len(rows))}
	for _, c := range rows {
		id, perr := t.ParseID(c.payload)
		key := id
		if perr != nil {
			key = eventstable.RecordKey(c.payload)
		}
		if _, seen := p.byKey[key]; seen {
			p.dupes++
			continue
		}
		p.byKey[key] = c
		if perr != nil {
			rec := rejected(key, nil, perr.Error(), c.createdAt)
			rec.age = c.age
			p.rejected = append(p.rejected, rec)
			continue
		}
		p.ids = append(p.ids, id)
	}
	return p
}

// fetch runs step 3: it reads the rows of ids, measured by the server before
// they are read. A batch holds at most MaxBatchBytes of row data, the rows
// past it are marked deferred, and a row larger than LargeRowBytes is marked
// large and not read: its jobs are inserted by the server. The same
// statement evaluates the filters of the routes of each row's name on the
// row, in the server (see jobparams.FilterArgs). It returns the rows by id and the
// bytes read.
func (b *Bridge) fetch(ctx context.Context, tx pgx.Tx, st *tableState, ids []string, seqs []int64, byName map[string][]routes.Route) (map[string]eventRow, int64, error) {
	found := make(map[string]eventRow, len(ids))
	if len(ids) == 0 {
		return found, 0, nil
	}
	fail := func(err error) error {
		return &stepError{step: stepFetch, seqs: seqs, err: fmt.Errorf("fetch events from %s: %w", st.t.Display, err)}
	}
	names, paths := jobparams.FilterArgs(byName)
	keyNames, keyPaths := jobparams.KeyArgs(byName)
	rows, err := tx.Query(ctx, st.fetch, ids, b.cfg.MaxBatchBytes, b.cfg.LargeRowBytes, names, paths, keyNames, keyPaths)
	if err != nil {
		return nil, 0, fail(err)
	}
	defer rows.Close()
	var held int64
	for rows.Next() {
		var id string
		var ev eventRow
		if err := rows.Scan(&id, &ev.name, &ev.placement, &ev.data, &ev.filters, &ev.keys); err != nil {
			return nil, 0, fail(err)
		}
		held += int64(len(ev.data))
		found[id] = ev
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fail(err)
	}
	return found, held, nil
}

// decideRules are what decide needs of the configuration.
type decideRules struct {
	grace time.Duration      // MissingGrace
	table *eventstable.Table // for reasons
}

func (b *Bridge) decideRules(st *tableState) decideRules {
	return decideRules{grace: b.cfg.MissingGrace, table: st.t}
}

// decision is what step 4 decided for a batch.
type decision struct {
	records  []outcomeRecord // one per event, for notified_dispatch
	requeue  []claimedRow    // no row visible yet: back to the outbox, tried again soon
	deferred []claimedRow    // past the batch's byte budget: back to the outbox as they were
}

// decide gives each parsed event its outcome, from its row (found, by id)
// and the routes of its name. It reads nothing and writes nothing: an event
// whose row is past the batch's byte budget is deferred; one isolated as bad
// (poison) is rejected with the database's error; one with no row is
// requeued until it was announced grace ago, then missing; a NULL name is
// rejected; a name with no route is unrouted; the rest are dispatched to
// their name's routes.
func decide(p parsed, found map[string]eventRow, routesByName map[string][]routes.Route, poison error, rules decideRules) decision {
	d := decision{records: slices.Clip(p.rejected)}
	for _, id := range p.ids {
		c := p.byKey[id]
		ev, ok := found[id]
		rec := outcomeRecord{key: id, createdAt: c.createdAt, age: c.age}
		switch {
		case ok && ev.placement == eventstable.RowDeferred:
			d.deferred = append(d.deferred, c)
			continue
		case poison != nil:
			rec.outcome, rec.reason = history.OutcomeRejected, ptr(poisonReason(rules.table.Display, id, poison))
		case !ok && c.age < rules.grace:
			c.payload = id // requeued under its canonical id
			d.requeue = append(d.requeue, c)
			continue
		case !ok:
			rec.outcome = history.OutcomeMissing
			rec.reason = ptr(rules.table.NoRowReason(id) + " after " + rules.grace.String())
		case ev.name == nil:
			rec.outcome, rec.reason = history.OutcomeRejected, ptr(rules.table.NullNameReason())
		case len(routesByName[*ev.name]) == 0:
			rec.name, rec.outcome = ev.name, history.OutcomeUnrouted
			rec.reason = ptr(eventstable.NoRouteReason(*ev.name))
		default:
			rec.name, rec.outcome = ev.name, history.OutcomeDispatched
			rec.routes = routesByName[*ev.name]
			rec.jobs, rec.skipped = jobparams.ApplyFilters(rec.routes, ev.filters)
			rec.lanes = jobparams.Lanes(rec.routes, rec.jobs, ev.keys)
			if len(rec.jobs) == 0 {
				rec.reason = ptr(allSkippedReason)
			}
			rec.data, rec.large = ev.data, ev.placement == eventstable.RowLarge
		}
		d.records = append(d.records, rec)
	}
	return d
}

func ptr[T any](v T) *T { return &v }

// allSkippedReason is the reason recorded for a dispatched event that the
// filters of all its routes skipped: it got no job.
const allSkippedReason = "no job: the filter of every route skipped the event"

// putAside returns to the outbox the rows decide left for later: those not
// visible yet, tried again after retryDelay, and those past the batch's
// byte budget, as they were.
func (b *Bridge) putAside(ctx context.Context, tx pgx.Tx, d decision, res *batchResult) error {
	if len(d.requeue) > 0 {
		ids := make([]string, len(d.requeue))
		created := make([]time.Time, len(d.requeue))
		for i, c := range d.requeue {
			ids[i], created[i] = c.payload, c.createdAt
		}
		if _, err := tx.Exec(ctx, b.q.requeue, b.cfg.Channel, ids, created, b.retryDelay()); err != nil {
			return fmt.Errorf("requeue %d ids not visible yet: %w", len(ids), err)
		}
		res.requeued = len(ids)
	}
	if len(d.deferred) > 0 {
		if err := b.putBack(ctx, tx, d.deferred); err != nil {
			return err
		}
		res.deferred = len(d.deferred)
	}
	return nil
}

// insertJobs runs step 6: one River job per route of each dispatched event
// in records, with River's InsertManyFastTx; those of large rows by the
// server. The jobs of ordered routes go to their lanes: the lanes are
// opened first (created or locked, in one order), which says which job is
// its lane's head and is inserted available; the others are inserted
// pending, with River's InsertManyTx, which returns their ids, and all are
// appended to their lanes in the order of their events. It returns how
// many jobs it inserted.
func (b *Bridge) insertJobs(ctx context.Context, tx pgx.Tx, st *tableState, records []outcomeRecord, seqs []int64) (int, error) {
	fail := func(err error) (int, error) { return 0, &stepError{step: stepInsert, seqs: seqs, err: err} }
	lanes, err := b.openLanes(ctx, tx, records)
	if err != nil {
		return fail(err)
	}
	var params, orderedParams []river.InsertManyParams
	var orderedAt []int // the lane entry of each of orderedParams
	var large []outcomeRecord
	var largeAt [][]int
	for i, r := range records {
		switch {
		case r.outcome != history.OutcomeDispatched || len(r.jobs) == 0:
		case r.large:
			large, largeAt = append(large, r), append(largeAt, lanes.of(i))
		default:
			src := jobs.Source{EventID: r.key, EventName: *r.name, Channel: b.cfg.Channel}
			unordered, ordered, keys := jobparams.SplitOrdered(r.jobs, r.lanes)
			if params, err = jobparams.Append(params, src, r.data, unordered, nil, nil); err != nil {
				return 0, err
			}
			if len(ordered) == 0 {
				continue
			}
			var heads []bool
			for _, k := range lanes.of(i) {
				if k >= 0 {
					heads, orderedAt = append(heads, lanes.entries[k].Head), append(orderedAt, k)
				}
			}
			if orderedParams, err = jobparams.Append(orderedParams, src, r.data, ordered, keys, heads); err != nil {
				return 0, err
			}
		}
	}
	n := 0
	if len(params) > 0 {
		inserted, err := b.river.InsertManyFastTx(ctx, tx, params)
		if err != nil {
			return fail(fmt.Errorf("insert %d jobs: %w", len(params), err))
		}
		n += inserted
	}
	if len(orderedParams) > 0 {
		results, err := b.river.InsertManyTx(ctx, tx, orderedParams)
		if err != nil {
			return fail(fmt.Errorf("insert %d ordered jobs: %w", len(orderedParams), err))
		}
		for k, res := range results {
			lanes.entries[orderedAt[k]].JobID = res.Job.ID
		}
		n += len(results)
	}
	if len(large) > 0 {
		inserted, err := b.insertLarge(ctx, tx, st, large, largeAt, lanes.entries)
		if err != nil {
			return fail(err)
		}
		n += inserted
	}
	if err := jobparams.AppendLanes(ctx, tx, b.q.appendLanes, b.cfg.Channel, lanes.entries); err != nil {
		return fail(err)
	}
	return n, nil
}

// batchLanes are the ordered jobs of a batch, in the order of their events.
type batchLanes struct {
	entries []jobparams.LaneEntry
	at      [][]int // per record, per job: its entry, or -1 for an unordered job; nil when none is ordered
}

// of returns the lane entries of record i's jobs (see at), or nil when
// none is ordered.
func (l batchLanes) of(i int) []int {
	if l.at == nil {
		return nil
	}
	return l.at[i]
}

// openLanes opens the lanes of the ordered jobs of records (see
// jobparams.OpenLanesSQL), which says which are heads.
func (b *Bridge) openLanes(ctx context.Context, tx pgx.Tx, records []outcomeRecord) (batchLanes, error) {
	var l batchLanes
	for i, r := range records {
		if r.outcome != history.OutcomeDispatched || r.lanes == nil {
			continue
		}
		if l.at == nil {
			l.at = make([][]int, len(records))
		}
		l.at[i] = make([]int, len(r.jobs))
		for j, route := range r.jobs {
			l.at[i][j] = -1
			if r.lanes[j] != "" {
				l.at[i][j] = len(l.entries)
				l.entries = append(l.entries, jobparams.LaneEntry{Kind: route.Kind, Key: r.lanes[j], Stop: route.OnFailure == routes.OnFailureStop})
			}
		}
	}
	if len(l.entries) == 0 {
		return l, nil
	}
	if err := jobparams.OpenLanes(ctx, tx, b.q.openLanes, b.cfg.Channel, l.entries); err != nil {
		return l, err
	}
	return l, nil
}

// steps times the steps of a dispatch transaction, for its log line, and
// runs the test hook after each.
type steps struct {
	b    *Bridge
	res  *batchResult
	last time.Time
}

func (b *Bridge) startSteps(res *batchResult) *steps {
	return &steps{b: b, res: res, last: time.Now()}
}

// done records how long the step name took and runs the test hook for
// hookStep, if any.
func (s *steps) done(name, hookStep string) error {
	now := time.Now()
	s.res.steps = append(s.res.steps, stepTime{name, now.Sub(s.last)})
	s.last = now
	if hookStep == "" {
		return nil
	}
	return s.b.hook(hookStep)
}

// retryDelay is how long an id whose row is not visible waits before it is
// tried again.
func (b *Bridge) retryDelay() time.Duration {
	return min(time.Second, max(b.cfg.MissingGrace/10, 10*time.Millisecond))
}

func rejected(key string, name *string, reason string, createdAt time.Time) outcomeRecord {
	return outcomeRecord{key: key, name: name, outcome: history.OutcomeRejected, reason: &reason, createdAt: createdAt}
}

// encodeRouteSets encodes the route sets of records for
// notified_dispatch.jobs, as history reads them: every route of the event's
// name, each saying whether its filter skipped the event. Most events of a
// batch share a few names and filter results, and so a few route sets: each
// distinct set is encoded once per name and results, and sent, and parsed,
// once; each record refers to its set by a 1-based index.
func encodeRouteSets(records []outcomeRecord) (index []int32, sets []string, err error) {
	index = make([]int32, len(records))
	setIndex := map[string]int32{}
	byName := map[string]int32{} // the events of one name and results share its routes
	for i, r := range records {
		name := ""
		switch {
		case r.skipped != nil:
			name = *r.name + "\x00" + strings.Join(r.skipped, ",")
		case len(r.routes) > 0:
			name = *r.name
		}
		if idx, ok := byName[name]; ok {
			index[i] = idx
			continue
		}
		rs := make([]history.Route, len(r.routes))
		for j, route := range r.routes {
			rs[j] = history.Route{Handler: route.Kind, Queue: route.Queue, Priority: route.Priority, MaxAttempts: route.MaxAttempts,
				Where: route.Where, OrderedBy: route.OrderedBy, Webhook: route.Webhook}
			if r.skipped != nil {
				rs[j].Skipped = r.skipped[j]
			}
		}
		buf, err := json.Marshal(rs)
		if err != nil {
			return nil, nil, fmt.Errorf("encode routes of event %s: %w", r.key, err)
		}
		idx, ok := setIndex[string(buf)]
		if !ok {
			sets = append(sets, string(buf))
			idx = int32(len(sets))
			setIndex[string(buf)] = idx
		}
		byName[name] = idx
		index[i] = idx
	}
	return index, sets, nil
}

// record inserts outcome rows and returns those whose key was not recorded
// before.
func (b *Bridge) record(ctx context.Context, tx pgx.Tx, records []outcomeRecord) ([]outcomeRecord, error) {
	if len(records) == 0 {
		return nil, nil
	}
	var (
		keys     = make([]string, len(records))
		names    = make([]*string, len(records))
		outcomes = make([]string, len(records))
		reasons  = make([]*string, len(records))
		created  = make([]time.Time, len(records))
	)
	for i, r := range records {
		keys[i], names[i], outcomes[i], reasons[i], created[i] = r.key, r.name, string(r.outcome), r.reason, r.createdAt
	}
	jobsIdx, jobSets, err := encodeRouteSets(records)
	if err != nil {
		return nil, err
	}
	rows, err := tx.Query(ctx, b.q.record, b.cfg.Channel, keys, names, outcomes, reasons, jobsIdx, created, jobSets)
	if err != nil {
		return nil, fmt.Errorf("record outcomes of %d events: %w", len(records), err)
	}
	inserted, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("record outcomes of %d events: %w", len(records), err)
	}
	fresh := make(map[string]bool, len(inserted))
	for _, k := range inserted {
		fresh[k] = true
	}
	out := make([]outcomeRecord, 0, len(inserted))
	for _, r := range records {
		if fresh[r.key] {
			out = append(out, r)
		}
	}
	return out, nil
}

// putBack returns claimed rows that did not fit in the batch's byte budget
// to the outbox, unchanged.
func (b *Bridge) putBack(ctx context.Context, tx pgx.Tx, rows []claimedRow) error {
	seqs := make([]int64, len(rows))
	payloads := make([]string, len(rows))
	created := make([]time.Time, len(rows))
	for i, r := range rows {
		seqs[i], payloads[i], created[i] = r.seq, r.payload, r.createdAt
	}
	if _, err := tx.Exec(ctx, b.q.putBack, b.cfg.Channel, seqs, payloads, created); err != nil {
		return fmt.Errorf("put %d events past the batch's byte budget back in the outbox: %w", len(rows), err)
	}
	return nil
}

// insertLarge inserts the jobs of events whose rows are over LargeRowBytes
// with a statement that reads each row in the server, in one round trip.
// A row deleted since the fetch fails the batch, to be retried. at gives,
// per record, its jobs' lane entries (see batchLanes; nil for none), whose
// job ids it fills in. It returns how many jobs it inserted.
func (b *Bridge) insertLarge(ctx context.Context, tx pgx.Tx, st *tableState, records []outcomeRecord, at [][]int, entries []jobparams.LaneEntry) (int, error) {
	batch := &pgx.Batch{}
	want := 0
	for i, r := range records {
		var heads []bool
		if at[i] != nil {
			heads = make([]bool, len(r.jobs))
			for j, k := range at[i] {
				heads[j] = k >= 0 && entries[k].Head
			}
		}
		args, err := jobparams.LargeRowArgs(jobs.Source{EventID: r.key, EventName: *r.name, Channel: b.cfg.Channel}, r.jobs, r.lanes, heads)
		if err != nil {
			return 0, err
		}
		batch.Queue(st.insertLarge, args...)
		want += len(r.jobs)
	}
	br := tx.SendBatch(ctx, batch)
	got := 0
	for i, r := range records {
		rows, _ := br.Query()
		ids := map[string]int64{} // by kind and webhook URL
		for rows.Next() {
			var id int64
			var kind, url string
			if err := rows.Scan(&id, &kind, &url); err != nil {
				rows.Close()
				_ = br.Close()
				return 0, fmt.Errorf("insert the jobs of event %s, a row over %d bytes: %w", r.key, b.cfg.LargeRowBytes, err)
			}
			ids[kind+"\x00"+url] = id
		}
		if err := rows.Err(); err != nil {
			_ = br.Close()
			return 0, fmt.Errorf("insert the jobs of event %s, a row over %d bytes: %w", r.key, b.cfg.LargeRowBytes, err)
		}
		got += len(ids)
		for j, k := range at[i] {
			if k >= 0 {
				entries[k].JobID = ids[r.jobs[j].Kind+"\x00"+r.jobs[j].Webhook]
			}
		}
	}
	if err := br.Close(); err != nil {
		return 0, fmt.Errorf("insert the jobs of %d large rows: %w", len(records), err)
	}
	if got != want {
		return 0, fmt.Errorf("insert the jobs of %d large rows: %d of %d jobs inserted: a row was deleted since the fetch", len(records), got, want)
	}
	return got, nil
}

func (b *Bridge) hook(step string) error {
	if b.testHook == nil {
		return nil
	}
	return b.testHook(step)
}
