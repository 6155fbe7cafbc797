package bridge

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/notified/notified/jobs"
	"github.com/notified/notified/migrations"
	"github.com/notified/notified/routes"
)

// Outcome is what became of an event, as recorded in notified_dispatch.
type Outcome string

// The outcomes an event can have.
const (
	// OutcomeDispatched: one job was inserted per route of the event's name.
	OutcomeDispatched Outcome = "dispatched"
	// OutcomeUnrouted: the event's name had no route when it was dispatched.
	OutcomeUnrouted Outcome = "unrouted"
	// OutcomeMissing: no row had the id, even after the grace period.
	OutcomeMissing Outcome = "missing"
	// OutcomeRejected: the payload is not a valid id, or the row's name is NULL.
	OutcomeRejected Outcome = "rejected"
)

// queries holds the SQL of the dispatch path, built once from the
// configuration. Every identifier in it is quoted.
type queries struct {
	claim     string
	claimSeqs string // claim the given outbox rows only, to isolate a bad event
	routes    string
	requeue   string
	putBack   string
	record    string
}

func newQueries(schema string) queries {
	outbox := migrations.Qualify(schema, "notified_outbox")
	dispatch := migrations.Qualify(schema, "notified_dispatch")
	route := migrations.Qualify(schema, "notified_route")
	return queries{
		// Claim the oldest available rows of the channel, skipping those
		// another bridge holds, and delete them by ctid (cheaper than by seq:
		// the planner picks a TID scan). If the transaction rolls back, the
		// rows are back for the next claim.
		claimSeqs: `WITH c AS (
			SELECT ctid FROM ` + outbox + `
			WHERE channel = $1 AND seq = ANY($2::bigint[])
			FOR UPDATE SKIP LOCKED
		)
		DELETE FROM ` + outbox + ` WHERE ctid = ANY(ARRAY(SELECT ctid FROM c))
		RETURNING seq, event_id, created_at, now() - created_at`,
		claim: `WITH c AS (
			SELECT ctid FROM ` + outbox + `
			WHERE channel = $1 AND available_at <= now()
			ORDER BY seq LIMIT $2
			FOR UPDATE SKIP LOCKED
		)
		DELETE FROM ` + outbox + ` WHERE ctid = ANY(ARRAY(SELECT ctid FROM c))
		RETURNING seq, event_id, created_at, now() - created_at`,
		routes: `SELECT event_name, kind, queue, priority, max_attempts FROM ` + route + ` ORDER BY event_name, kind`,
		// An id whose row is not visible yet goes back with its original
		// created_at, to be tried again after $4.
		requeue: `INSERT INTO ` + outbox + ` (channel, event_id, created_at, available_at)
			SELECT $1, id, created_at, now() + $4::interval
			FROM unnest($2::text[], $3::timestamptz[]) AS r(id, created_at)`,
		// Rows past a batch's byte budget go back as they were, under
		// their own seq: they are the oldest for the next claim.
		putBack: `INSERT INTO ` + outbox + ` (seq, channel, event_id, created_at) OVERRIDING SYSTEM VALUE
			SELECT r.seq, $1, r.event_id, r.created_at
			FROM unnest($2::bigint[], $3::text[], $4::timestamptz[]) AS r(seq, event_id, created_at)`,
		// The primary key (channel, event_id) makes dispatch exactly once: a
		// key recorded before (by this bridge or another, committed or not)
		// is skipped and its events get no jobs here, unless it was recorded
		// as missing and its row has appeared since. Rows are inserted in
		// key order so that concurrent bridges lock keys in the same order.
		record: `INSERT INTO ` + dispatch + ` (channel, event_id, event_name, outcome, reason, jobs, notified_at)
			SELECT $1, r.event_id, r.event_name, r.outcome, r.reason, ($8::jsonb[])[r.jobs], r.notified_at
			FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::int[], $7::timestamptz[])
				AS r(event_id, event_name, outcome, reason, jobs, notified_at)
			ORDER BY r.event_id
			ON CONFLICT (channel, event_id) DO UPDATE SET
				event_name = EXCLUDED.event_name, outcome = EXCLUDED.outcome, reason = EXCLUDED.reason,
				jobs = EXCLUDED.jobs, notified_at = EXCLUDED.notified_at, dispatched_at = now()
			-- A key recorded as missing (a NOTIFY for an id with no row) does
			-- not stop the row inserted later from being dispatched: its
			-- record is replaced, once. Any other record stands.
			WHERE ` + dispatch + `.outcome = 'missing' AND EXCLUDED.outcome <> 'missing'
			RETURNING event_id`,
	}
}

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
	placement int // rowInline, rowLarge or rowDeferred
}

// outcomeRecord is one row for notified_dispatch.
type outcomeRecord struct {
	key       string
	name      *string
	outcome   Outcome
	reason    *string
	jobs      []routes.Route
	createdAt time.Time
	age       time.Duration // in the outbox when claimed, by the database's clock
	data      []byte
	large     bool // the row is over LargeRowBytes: data is not read
}

// jobArgs is the args of a job the bridge inserts: a jobs.Payload whose kind
// comes from the route.
type jobArgs struct {
	kind string
	jobs.Payload
}

func (a jobArgs) Kind() string { return a.kind }

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
	last := time.Now() // for the step timings in the batch's log line
	tx, err := b.pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("begin dispatch: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()

	// 1. Claim rows and read the routes, in one round trip. The commit may
	// skip waiting for its WAL flush: what it consumes, the outbox row, was
	// made durable by the producer's commit, so a crash before the flush
	// loses the whole dispatch (claim, record and jobs) and the rows are
	// dispatched again. Custom plans keep the claim on its index as the
	// tables grow.
	//
	// The outbox fills and empties faster than autovacuum analyzes it, so
	// its statistics are usually stale; with them the planner would sort
	// the whole backlog for each claim. Sorts and bitmap scans are off for
	// the claim alone, which leaves the primary key's ordered scan: a claim
	// reads about BatchSize entries, whatever the backlog.
	//
	// While the GIN cleaner flushes River's pending lists, the transaction
	// leaves the flushing to it (see gin.go).
	//
	// A statement that runs longer than BatchTimeout is cancelled by the
	// server (SQLSTATE 57014), and the batch is split (see isolate.go); a
	// lock on the events table held longer than a quarter of it (an ALTER
	// TABLE, say) fails the batch as a whole (SQLSTATE 55P03), to be
	// retried.
	options := `SELECT set_config('synchronous_commit', 'off', true), set_config('plan_cache_mode', 'force_custom_plan', true),
		set_config('enable_sort', 'off', true), set_config('enable_bitmapscan', 'off', true),
		set_config('statement_timeout', '` + strconv.FormatInt(b.cfg.BatchTimeout.Milliseconds(), 10) + `', true),
		set_config('lock_timeout', '` + strconv.FormatInt(max(b.cfg.BatchTimeout.Milliseconds()/4, 1), 10) + `', true)`
	if b.ginCleaning.Load() {
		options += `, set_config('gin_pending_list_limit', '` + ginPendingLimit + `', true)`
	}
	batch := &pgx.Batch{}
	batch.Queue(options)
	if sel.seqs != nil {
		batch.Queue(b.q.claimSeqs, b.cfg.Channel, sel.seqs)
	} else {
		batch.Queue(b.q.claim, b.cfg.Channel, b.cfg.BatchSize)
	}
	// The fetch looks rows up by primary key. An events table that grew
	// since it was last analyzed (or never was) looks small to the planner,
	// which then reads all of it for each batch: sequential scans are off
	// for the rest of the transaction, whose other statements do not scan.
	batch.Queue("SELECT set_config('enable_sort', 'on', true), set_config('enable_bitmapscan', 'on', true), set_config('enable_seqscan', 'off', true)")
	batch.Queue(b.q.routes)
	// The events table is checked after the claim, so that a row claimed
	// here was inserted into the table as the check sees it: the ids are
	// parsed for the id column's type as it is now.
	st := b.table.Load()
	batch.Queue(checkTableSQL, st.t.ident, b.cfg.IDColumn, b.cfg.NameColumn, st.triggerMark)
	br := tx.SendBatch(ctx, batch)
	if _, err := br.Exec(); err != nil {
		_ = br.Close()
		return nil, fmt.Errorf("set dispatch options: %w", err)
	}
	rows, _ := br.Query()
	claimed, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (claimedRow, error) {
		var c claimedRow
		err := row.Scan(&c.seq, &c.payload, &c.createdAt, &c.age)
		return c, err
	})
	if err != nil {
		_ = br.Close()
		return nil, fmt.Errorf("claim outbox rows of channel %q: %w", b.cfg.Channel, err)
	}
	if _, err := br.Exec(); err != nil {
		_ = br.Close()
		return nil, fmt.Errorf("reset planner options: %w", err)
	}
	rows, _ = br.Query()
	allRoutes, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (routes.Route, error) {
		var r routes.Route
		err := row.Scan(&r.Event, &r.Kind, &r.Queue, &r.Priority, &r.MaxAttempts)
		return r, err
	})
	if err != nil {
		_ = br.Close()
		return nil, fmt.Errorf("read routes: %w", err)
	}
	seen, err := scanTableCheck(br.QueryRow())
	if err != nil {
		_ = br.Close()
		return nil, err
	}
	if err := br.Close(); err != nil {
		return nil, fmt.Errorf("claim batch: %w", err)
	}
	if err := b.checkTable(st, seen); err != nil {
		return nil, err // rolls the claim back
	}
	res := &batchResult{claimed: len(claimed), claimedAt: time.Now()}
	mark := func(name string) {
		now := time.Now()
		res.steps = append(res.steps, stepTime{name, now.Sub(last)})
		last = now
	}
	mark("claim")
	if len(claimed) == 0 {
		return res, nil
	}
	if err := b.hook(stepClaimed); err != nil {
		return nil, err
	}
	slices.SortFunc(claimed, func(x, y claimedRow) int { return cmp.Compare(x.seq, y.seq) })
	seqs := make([]int64, len(claimed))
	for i, c := range claimed {
		seqs[i] = c.seq
	}

	// 2. Parse the ids; a payload that is not an id of this table is
	// recorded as rejected and does not touch its neighbours.
	var (
		records = make([]outcomeRecord, 0, len(claimed))
		ids     = make([]string, 0, len(claimed))
		byKey   = make(map[string]claimedRow, len(claimed))
	)
	for _, c := range claimed {
		id, perr := st.t.parseID(c.payload)
		if perr != nil {
			key := recordKey(c.payload)
			if _, seen := byKey[key]; seen {
				res.dupes++
				continue
			}
			byKey[key] = c
			rec := rejected(key, nil, perr.Error(), c.createdAt)
			rec.age = c.age
			records = append(records, rec)
			continue
		}
		if _, seen := byKey[id]; seen {
			res.dupes++
			continue
		}
		byKey[id] = c
		ids = append(ids, id)
	}

	// 3. Fetch the rows, measured by the server before they are read: a
	// batch holds at most MaxBatchBytes of row data, the rows past it go
	// back to the outbox (step 4), and a row larger than LargeRowBytes is
	// never read: its jobs are inserted by the server (step 6). An event
	// isolated as bad (sel.poison) is not fetched again: it is recorded as
	// rejected in step 4.
	found := make(map[string]eventRow, len(ids))
	if len(ids) > 0 && sel.poison == nil {
		rows, err := tx.Query(ctx, st.fetch, ids, b.cfg.MaxBatchBytes, b.cfg.LargeRowBytes)
		if err != nil {
			return nil, &stepError{step: stepFetch, seqs: seqs, err: fmt.Errorf("fetch events from %s: %w", st.t.display, err)}
		}
		for rows.Next() {
			var id string
			var ev eventRow
			if err := rows.Scan(&id, &ev.name, &ev.placement, &ev.data); err != nil {
				rows.Close()
				return nil, &stepError{step: stepFetch, seqs: seqs, err: fmt.Errorf("fetch events from %s: %w", st.t.display, err)}
			}
			res.held += int64(len(ev.data))
			found[id] = ev
		}
		if err := rows.Err(); err != nil {
			return nil, &stepError{step: stepFetch, seqs: seqs, err: fmt.Errorf("fetch events from %s: %w", st.t.display, err)}
		}
	}
	mark("fetch")
	if err := b.hook(stepFetched); err != nil {
		return nil, err
	}

	// 4. Decide each event's outcome.
	routesByName := make(map[string][]routes.Route)
	for _, r := range allRoutes {
		routesByName[r.Event] = append(routesByName[r.Event], r)
	}
	var requeueIDs []string
	var requeueCreated []time.Time
	var deferred []claimedRow
	for _, id := range ids {
		c := byKey[id]
		ev, ok := found[id]
		n := len(records)
		switch {
		case ok && ev.placement == rowDeferred:
			deferred = append(deferred, c)
		case sel.poison != nil:
			records = append(records, rejected(id, nil, poisonReason(st.t.display, id, sel.poison), c.createdAt))
		case !ok && c.age < b.cfg.MissingGrace:
			requeueIDs = append(requeueIDs, id)
			requeueCreated = append(requeueCreated, c.createdAt)
		case !ok:
			reason := fmt.Sprintf("no row in %s with %s = %s after %s", st.t.display, b.cfg.IDColumn, id, b.cfg.MissingGrace)
			records = append(records, outcomeRecord{key: id, outcome: OutcomeMissing, reason: &reason, createdAt: c.createdAt})
		case ev.name == nil:
			records = append(records, rejected(id, nil, fmt.Sprintf("name column %s is NULL", b.cfg.NameColumn), c.createdAt))
		case len(routesByName[*ev.name]) == 0:
			reason := fmt.Sprintf("no route for event name %q", *ev.name)
			records = append(records, outcomeRecord{key: id, name: ev.name, outcome: OutcomeUnrouted, reason: &reason, createdAt: c.createdAt})
		default:
			records = append(records, outcomeRecord{key: id, name: ev.name, outcome: OutcomeDispatched,
				jobs: routesByName[*ev.name], createdAt: c.createdAt, data: ev.data, large: ev.placement == rowLarge})
		}
		if len(records) > n {
			records[n].age = c.age
		}
	}
	if len(requeueIDs) > 0 {
		if _, err := tx.Exec(ctx, b.q.requeue, b.cfg.Channel, requeueIDs, requeueCreated, b.retryDelay()); err != nil {
			return nil, fmt.Errorf("requeue %d ids not visible yet: %w", len(requeueIDs), err)
		}
		res.requeued = len(requeueIDs)
	}
	if len(deferred) > 0 {
		if err := b.putBack(ctx, tx, deferred); err != nil {
			return nil, err
		}
		res.deferred = len(deferred)
	}

	// 5. Record the outcomes; only the keys recorded now get jobs.
	fresh, err := b.record(ctx, tx, records)
	if err != nil {
		return nil, err
	}
	mark("record")
	if err := b.hook(stepRecorded); err != nil {
		return nil, err
	}
	res.dupes += len(records) - len(fresh)
	res.recorded = fresh

	// 6. Insert one job per route of each dispatched event; those of large
	// rows by the server.
	var params []river.InsertManyParams
	var large []outcomeRecord
	for _, r := range fresh {
		if r.outcome != OutcomeDispatched {
			continue
		}
		if r.large {
			large = append(large, r)
			continue
		}
		src := jobs.Source{EventID: r.key, EventName: *r.name, Channel: b.cfg.Channel}
		if params, err = appendJobParams(params, src, r.data, r.jobs); err != nil {
			return nil, err
		}
	}
	if len(params) > 0 {
		n, err := b.river.InsertManyFastTx(ctx, tx, params)
		if err != nil {
			return nil, &stepError{step: stepInsert, seqs: seqs, err: fmt.Errorf("insert %d jobs: %w", len(params), err)}
		}
		res.jobs = n
	}
	if len(large) > 0 {
		n, err := b.insertLarge(ctx, tx, st, large)
		if err != nil {
			return nil, &stepError{step: stepInsert, seqs: seqs, err: err}
		}
		res.jobs += n
	}
	mark("insert")
	if err := b.hook(stepInserted); err != nil {
		return nil, err
	}

	// 7. Commit: claim, outcomes and jobs become visible together.
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("commit dispatch of %d events: %w", len(claimed), err)
	}
	mark("commit")
	return res, nil
}

// appendJobParams appends the insert parameters of one job per route for an
// event: args are the event's Payload, and the metadata names its source
// (and the replay, if any), so River UI shows where a job came from.
func appendJobParams(params []river.InsertManyParams, src jobs.Source, data []byte, rs []routes.Route) ([]river.InsertManyParams, error) {
	payload := jobs.Payload{EventID: src.EventID, EventName: src.EventName, Channel: src.Channel, Data: data}
	meta, err := jobMetadata(src)
	if err != nil {
		return params, err
	}
	opts := make([]river.InsertOpts, len(rs))
	for i, route := range rs {
		opts[i] = river.InsertOpts{Queue: route.Queue, Priority: route.Priority, MaxAttempts: route.MaxAttempts, Metadata: meta}
		params = append(params, river.InsertManyParams{Args: jobArgs{kind: route.Kind, Payload: payload}, InsertOpts: &opts[i]})
	}
	return params, nil
}

// jobMetadata is the River metadata of a job the bridge inserts: its source
// event (and replay, if any) under jobs.MetadataKey.
func jobMetadata(src jobs.Source) ([]byte, error) {
	var meta []byte
	if src.ReplayID == 0 && jsonSafe(src.EventID) && jsonSafe(src.EventName) && jsonSafe(src.Channel) {
		meta = make([]byte, 0, 64+len(src.EventID)+len(src.EventName)+len(src.Channel))
		meta = append(meta, `{"notified":{"event_id":"`...)
		meta = append(meta, src.EventID...)
		meta = append(meta, `","event_name":"`...)
		meta = append(meta, src.EventName...)
		meta = append(meta, `","channel":"`...)
		meta = append(meta, src.Channel...)
		meta = append(meta, `"}}`...)
	} else {
		var err error
		if meta, err = json.Marshal(map[string]jobs.Source{jobs.MetadataKey: src}); err != nil {
			return nil, fmt.Errorf("encode metadata of event %s: %w", src.EventID, err)
		}
	}
	return meta, nil
}

// jsonSafe reports whether s encodes in JSON as itself between quotes, as
// encoding/json would write it (which also escapes <, > and &).
func jsonSafe(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x80 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

// retryDelay is how long an id whose row is not visible waits before it is
// tried again.
func (b *Bridge) retryDelay() time.Duration {
	return min(time.Second, max(b.cfg.MissingGrace/10, 10*time.Millisecond))
}

func rejected(key string, name *string, reason string, createdAt time.Time) outcomeRecord {
	return outcomeRecord{key: key, name: name, outcome: OutcomeRejected, reason: &reason, createdAt: createdAt}
}

// encodeRouteSets encodes the route sets of records for
// notified_dispatch.jobs. Most events of a batch share a few route sets: each
// distinct set is sent, and parsed, once, and each record refers to its set
// by a 1-based index.
func encodeRouteSets(records []outcomeRecord) (index []int32, sets []string, err error) {
	index = make([]int32, len(records))
	setIndex := map[string]int32{}
	// Records of a batch share their route slices (one per event name):
	// each slice is encoded once.
	type sliceKey struct {
		first *routes.Route
		n     int
	}
	memo := map[sliceKey]int32{}
	for i, r := range records {
		sk := sliceKey{}
		if len(r.jobs) > 0 {
			sk = sliceKey{&r.jobs[0], len(r.jobs)}
		}
		if idx, ok := memo[sk]; ok {
			index[i] = idx
			continue
		}
		rj := make([]routeJSON, len(r.jobs))
		for j, route := range r.jobs {
			rj[j] = routeJSON{Kind: route.Kind, Queue: route.Queue, Priority: route.Priority, MaxAttempts: route.MaxAttempts}
		}
		buf, err := json.Marshal(rj)
		if err != nil {
			return nil, nil, fmt.Errorf("encode routes of event %s: %w", r.key, err)
		}
		idx, ok := setIndex[string(buf)]
		if !ok {
			sets = append(sets, string(buf))
			idx = int32(len(sets))
			setIndex[string(buf)] = idx
		}
		memo[sk] = idx
		index[i] = idx
	}
	return index, sets, nil
}

// routeJSON is how a route is recorded in notified_dispatch.jobs.
type routeJSON struct {
	Kind        string `json:"kind"`
	Queue       string `json:"queue"`
	Priority    int    `json:"priority"`
	MaxAttempts int    `json:"max_attempts"`
}

// record inserts outcome rows and returns those whose key was not recorded
// before.
func (b *Bridge) record(ctx context.Context, tx interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, records []outcomeRecord) ([]outcomeRecord, error) {
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
// A row deleted since the fetch fails the batch, to be retried.
func (b *Bridge) insertLarge(ctx context.Context, tx pgx.Tx, st *tableState, records []outcomeRecord) (int, error) {
	batch := &pgx.Batch{}
	want := 0
	for _, r := range records {
		meta, err := jobMetadata(jobs.Source{EventID: r.key, EventName: *r.name, Channel: b.cfg.Channel})
		if err != nil {
			return 0, err
		}
		kinds := make([]string, len(r.jobs))
		queues := make([]string, len(r.jobs))
		priorities := make([]int16, len(r.jobs))
		attempts := make([]int16, len(r.jobs))
		for i, route := range r.jobs {
			kinds[i], queues[i] = route.Kind, route.Queue
			priorities[i], attempts[i] = int16(route.Priority), int16(min(route.MaxAttempts, 1<<15-1))
		}
		batch.Queue(st.insertLarge, r.key, r.key, *r.name, b.cfg.Channel, meta, kinds, queues, priorities, attempts)
		want += len(r.jobs)
	}
	br := tx.SendBatch(ctx, batch)
	got := 0
	for _, r := range records {
		tag, err := br.Exec()
		if err != nil {
			_ = br.Close()
			return 0, fmt.Errorf("insert the jobs of event %s, a row over %d bytes: %w", r.key, b.cfg.LargeRowBytes, err)
		}
		got += int(tag.RowsAffected())
	}
	if err := br.Close(); err != nil {
		return 0, fmt.Errorf("insert the jobs of %d large rows: %w", len(records), err)
	}
	if got != want {
		return 0, fmt.Errorf("insert the jobs of %d large rows: %d of %d jobs inserted: a row was deleted since the fetch", len(records), got, want)
	}
	return got, nil
}
