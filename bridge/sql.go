package bridge

import (
	"github.com/notified/notified/internal/dbtx"
	"github.com/notified/notified/internal/eventstable"
	"github.com/notified/notified/internal/jobparams"
	"github.com/notified/notified/routes"
)

// The bridge's statements. {schema}. stands for the configured schema (see
// dbtx.InSchema); every value is a parameter. newQueries fills them in once.

// claimSQL claims up to $2 of the oldest available outbox rows of channel
// $1, skipping those another bridge holds, and deletes them by ctid
// (cheaper than by seq: the planner picks a TID scan). If the transaction
// rolls back, the rows are back for the next claim.
const claimSQL = `WITH c AS (
		SELECT ctid FROM {schema}.notified_outbox
		WHERE channel = $1 AND available_at <= now()
		ORDER BY seq LIMIT $2
		FOR UPDATE SKIP LOCKED
	)
	DELETE FROM {schema}.notified_outbox WHERE ctid = ANY(ARRAY(SELECT ctid FROM c))
	RETURNING seq, event_id, created_at, now() - created_at`

// claimSeqsSQL claims the outbox rows $2 of channel $1 only, as claimSQL
// does, to isolate a bad event.
const claimSeqsSQL = `WITH c AS (
		SELECT ctid FROM {schema}.notified_outbox
		WHERE channel = $1 AND seq = ANY($2::bigint[])
		FOR UPDATE SKIP LOCKED
	)
	DELETE FROM {schema}.notified_outbox WHERE ctid = ANY(ARRAY(SELECT ctid FROM c))
	RETURNING seq, event_id, created_at, now() - created_at`

// laneLockSQL takes channel $1's lane lock when a route is ordered, and
// returns a row if it did. Claims of a channel with ordered routes are
// serialized by it, each holding it to its commit, so that every dispatch
// appends its jobs to their lanes after the dispatches that claimed
// earlier events: the jobs of one lane keep the order of their events. The
// lock is a transaction-level advisory lock, keyed by the channel and the
// routes table (one per schema).
const laneLockSQL = `SELECT pg_advisory_xact_lock(hashtextextended('notified lanes ' || $1::text, '{schema}.notified_route'::regclass::oid::bigint))
	WHERE EXISTS (SELECT 1 FROM {schema}.notified_route WHERE ordered_by IS NOT NULL)`

// afterClaimOptions turn sorts and bitmap scans back on after the claim. The
// fetch looks rows up by primary key; an events table that grew since it was
// last analyzed (or never was) looks small to the planner, which would then
// read all of it for each batch: sequential scans are off for the rest of
// the transaction, whose other statements do not scan.
// A lock the rest waits for longer than $1 ms (a quarter of BatchTimeout)
// fails the batch.
const afterClaimOptions = "SELECT set_config('enable_sort', 'on', true), set_config('enable_bitmapscan', 'on', true), set_config('enable_seqscan', 'off', true), set_config('lock_timeout', $1, true)"

// requeueSQL puts ids $2 whose row is not visible yet back in channel $1's
// outbox with their original created_at $3, to be tried again after $4.
const requeueSQL = `INSERT INTO {schema}.notified_outbox (channel, event_id, created_at, available_at)
	SELECT $1, id, created_at, now() + $4::interval
	FROM unnest($2::text[], $3::timestamptz[]) AS r(id, created_at)`

// putBackSQL puts rows past a batch's byte budget back as they were, under
// their own seq $2: they are the oldest for the next claim.
const putBackSQL = `INSERT INTO {schema}.notified_outbox (seq, channel, event_id, created_at) OVERRIDING SYSTEM VALUE
	SELECT r.seq, $1, r.event_id, r.created_at
	FROM unnest($2::bigint[], $3::text[], $4::timestamptz[]) AS r(seq, event_id, created_at)`

// recordSQL records one outcome per event of channel $1 and returns the
// keys it recorded. The primary key (channel, event_id) makes dispatch
// exactly once: a key recorded before (by this bridge or another,
// committed or not) is skipped and its events get no jobs here, unless it
// was recorded as missing and its row has appeared since. Rows are
// inserted in key order so that concurrent bridges lock keys in the same
// order. $8 are the distinct route sets as JSON, $6 each event's index in
// them.
const recordSQL = `INSERT INTO {schema}.notified_dispatch (channel, event_id, event_name, outcome, reason, jobs, notified_at)
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
	WHERE notified_dispatch.outcome = 'missing' AND EXCLUDED.outcome <> 'missing'
	RETURNING event_id`

// wakeLanesSQL advances the lanes whose head River finalized while a
// dispatch held them (see migration 005), and returns how many.
const wakeLanesSQL = `SELECT {schema}.notified_lane_wake_up()`

// registerSQL records bridge $1 of channel $2 in notified_bridge, or
// refreshes its heartbeat.
const registerSQL = `INSERT INTO {schema}.notified_bridge (id, channel, host, pid, version, poll_interval)
	VALUES ($1, $2, $3, $4, $5, $6)
	ON CONFLICT (id) DO UPDATE SET seen_at = now()`

// unregisterSQL deletes bridge $1's row.
const unregisterSQL = `DELETE FROM {schema}.notified_bridge WHERE id = $1`

// backlogSQL reads how many outbox rows channel $1 has, and the age of the
// oldest in seconds.
const backlogSQL = `SELECT count(*), coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8
	FROM {schema}.notified_outbox WHERE channel = $1`

// ginIndexesSQL lists the GIN indexes of table $1 (river_job), as regclass
// text.
const ginIndexesSQL = `SELECT c.oid::regclass::text FROM pg_index i
	JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam
	WHERE i.indrelid = $1::regclass AND a.amname = 'gin' ORDER BY 1`

// ginCleanSQL flushes the pending list of GIN index $1.
const ginCleanSQL = `SELECT gin_clean_pending_list($1::regclass)`

// probeSQL sends payload $2 on channel $1, to check that the listener
// receives notifications.
const probeSQL = `SELECT pg_notify($1, $2)`

// queries are the bridge's statements for its schema.
type queries struct {
	claim, claimSeqs, routes, requeue, putBack, record string
	register, unregister, backlog                      string
	laneLock, openLanes, appendLanes, wakeLanes        string
}

func newQueries(schema string) queries {
	in := func(q string) string { return dbtx.InSchema(schema, q) }
	return queries{
		claim: in(claimSQL), claimSeqs: in(claimSeqsSQL), routes: routes.ListSQL(schema),
		requeue: in(requeueSQL), putBack: in(putBackSQL), record: in(recordSQL),
		register: in(registerSQL), unregister: in(unregisterSQL), backlog: in(backlogSQL),
		laneLock: in(laneLockSQL), openLanes: jobparams.OpenLanesSQL(schema), appendLanes: jobparams.AppendLanesSQL(schema),
		wakeLanes: in(wakeLanesSQL),
	}
}

// addToOutboxSQL puts the notified ids $2 of channel $1 in the outbox when
// the events table t has their row and they are not recorded yet: a NOTIFY
// can be sent by any role that can connect, and must not be able to fill
// notified's tables. It returns how many ids were put in the outbox and
// the ids that have no row (yet).
func addToOutboxSQL(schema string, t *eventstable.Table) string {
	return dbtx.InSchema(schema, `WITH ids AS (
			SELECT p, EXISTS (SELECT 1 FROM `+t.Ident+` AS e WHERE e.`+t.IDCol+` = p) AS found
			FROM unnest($2::`+t.ArrayType()+`) AS p
		), ins AS (
			INSERT INTO {schema}.notified_outbox (channel, event_id)
			SELECT $1, ids.p::text FROM ids
			WHERE ids.found AND NOT EXISTS (
				SELECT 1 FROM {schema}.notified_dispatch d WHERE d.channel = $1 AND d.event_id = ids.p::text AND d.outcome <> 'missing')
			RETURNING 1
		)
		SELECT (SELECT count(*) FROM ins), coalesce(array_agg(ids.p::text) FILTER (WHERE NOT ids.found), '{}') FROM ids`)
}

// checkTableSQL reads what the bridge relies on in the events table: its
// oid, the type of its id column, whether its name column exists, and
// whether an enabled notified capture trigger for the channel is on it.
const checkTableSQL = `SELECT r.oid,
	(SELECT a.atttypid FROM pg_catalog.pg_attribute a
		WHERE a.attrelid = r.oid AND a.attname = $2 AND a.attnum > 0 AND NOT a.attisdropped),
	EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
		WHERE a.attrelid = r.oid AND a.attname = $3 AND a.attnum > 0 AND NOT a.attisdropped),
	EXISTS (SELECT 1 FROM pg_catalog.pg_trigger t JOIN pg_catalog.pg_proc p ON p.oid = t.tgfoid
		WHERE t.tgrelid = r.oid AND t.tgenabled <> 'D' AND NOT t.tgisinternal
		AND p.proname LIKE 'notified\_capture\_%' AND strpos(p.prosrc, $4) > 0)
FROM (SELECT pg_catalog.to_regclass($1)::oid AS oid) r`
