package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// notifyKind says what a hand-sent NOTIFY carried.
type notifyKind int

const (
	notifyExisting     notifyKind = iota // a committed id, sometimes long dispatched
	notifyFresh                          // the id committed last: races the trigger's own outbox row
	notifyNonexistent                    // a negative id or one far beyond the sequence
	notifyRolledBack                     // an id of a transaction about to roll back
	notifyBeforeCommit                   // an id of a transaction that commits later (up to 2.5 s)
	notifyEndPhase                       // nonexistent, sent after the chaos with one bridge listening
)

// notifyRec is one hand-sent `SELECT pg_notify(channel, id)`.
type notifyRec struct {
	id      int64
	payload string
	kind    notifyKind
	sent    time.Time
	ok      bool // the statement returned without error
}

// evRec is what the ledger knows of a committed (or maybe committed) row.
type evRec struct {
	name         uint8 // index in allNames
	notifiedLate bool  // hand-notified before its transaction committed
	ins          int64 // unix ns: the INSERT sent (before its transaction could commit)
	start, end   int64 // unix ns: commit sent, commit returned
}

// ledger is everything producers did, as they saw it.
type ledger struct {
	mu         sync.Mutex
	committed  map[int64]evRec // the commit returned without error
	order      []int64         // committed ids, in commit order
	uncertain  map[int64]evRec // RETURNING gave the id, then the commit failed: unknown outcome
	rolledBack map[int64]bool  // ids of transactions we rolled back (true: hand-notified too)
	notifies   []notifyRec
	nextFake   int64

	singles, bulks, bulkRows, rollbacks, lates, canaries int
	failedOps                                            map[string]int
	lastErr                                              map[string]string
}

func newLedger() *ledger {
	return &ledger{committed: map[int64]evRec{}, uncertain: map[int64]evRec{}, rolledBack: map[int64]bool{},
		failedOps: map[string]int{}, lastErr: map[string]string{}}
}

func nameIndex(name string) uint8 {
	for i, n := range allNames {
		if n == name {
			return uint8(i)
		}
	}
	panic("unknown event name " + name)
}

// commit records rows whose commit returned without error: the INSERT was
// sent at ins, the commit at start, and it returned at end.
func (l *ledger) commit(ids []int64, names []string, ins, start, end time.Time, notifiedLate bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, id := range ids {
		l.committed[id] = evRec{name: nameIndex(names[i]), notifiedLate: notifiedLate, ins: ins.UnixNano(), start: start.UnixNano(), end: end.UnixNano()}
		l.order = append(l.order, id)
	}
}

func (l *ledger) uncertainCommit(ids []int64, names []string, start time.Time, notifiedLate bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, id := range ids {
		l.uncertain[id] = evRec{name: nameIndex(names[i]), notifiedLate: notifiedLate, start: start.UnixNano()}
	}
}

func (l *ledger) rollBack(ids []int64, notified int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, id := range ids {
		l.rolledBack[id] = id == notified
	}
}

func (l *ledger) addNotify(n notifyRec) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.notifies = append(l.notifies, n)
}

func (l *ledger) fail(op string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.failedOps[op]++
	l.lastErr[op] = err.Error()
}

func (l *ledger) count(p *int, n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	*p += n
}

func (l *ledger) committedCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.committed)
}

// pickCommitted returns a committed id: the last one when fresh, else any.
func (l *ledger) pickCommitted(rng *rand.Rand, fresh bool) (int64, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.order) == 0 {
		return 0, false
	}
	if fresh {
		return l.order[len(l.order)-1], true
	}
	return l.order[rng.IntN(len(l.order))], true
}

// fakeID returns an id no row will ever have: negative, or far beyond what
// the sequence reaches in a run.
func (l *ledger) fakeID(rng *rand.Rand) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.nextFake++
	if rng.IntN(2) == 0 {
		return -l.nextFake
	}
	return 1_000_000_000_000 + l.nextFake
}

func (l *ledger) endPhaseIDs() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var ids []string
	for _, n := range l.notifies {
		if n.kind == notifyEndPhase {
			ids = append(ids, strconv.FormatInt(n.id, 10))
		}
	}
	return ids
}

// startProducers starts every producer; each runs until ctx is done.
// Failures (the database restarting, connections terminated, the table
// locked) are counted and retried with a backoff.
func (h *harness) startProducers(ctx context.Context, wg *sync.WaitGroup) {
	type producer struct {
		name  string
		op    func(ctx context.Context, rng *rand.Rand) error
		pause [2]time.Duration
	}
	ps := []producer{
		{"single-1", h.produceSingle, [2]time.Duration{10 * time.Millisecond, 60 * time.Millisecond}},
		{"single-2", h.produceSingle, [2]time.Duration{10 * time.Millisecond, 60 * time.Millisecond}},
		{"bulk", h.produceBulk, [2]time.Duration{500 * time.Millisecond, 2500 * time.Millisecond}},
		{"rollback", h.produceRollback, [2]time.Duration{200 * time.Millisecond, time.Second}},
		{"notify", h.produceNotify, [2]time.Duration{50 * time.Millisecond, 300 * time.Millisecond}},
		{"late-commit", h.produceLateCommit, [2]time.Duration{500 * time.Millisecond, 2 * time.Second}},
	}
	for _, p := range ps {
		rng := h.rng("producer " + p.name)
		wg.Go(func() {
			failures := 0
			for ctx.Err() == nil {
				// An operation is never cancelled half-way by the end of
				// the run: only by its own timeout.
				octx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				err := p.op(octx, rng)
				cancel()
				if err != nil {
					h.led.fail(p.name, err)
					failures++
					sleep(ctx, min(100*time.Millisecond<<min(failures-1, 5), 2*time.Second))
					continue
				}
				failures = 0
				sleep(ctx, between(rng, p.pause[0], p.pause[1]))
			}
		})
	}
}

// produceSingle commits one row on its own.
func (h *harness) produceSingle(ctx context.Context, rng *rand.Rand) error {
	name := producerDraw[rng.IntN(len(producerDraw))]
	payload := `{"src": "single"}`
	if name == nameOrdered && rng.Float64() < keyedShare {
		payload = fmt.Sprintf(`{"src": "single", "key": "k%d"}`, rng.IntN(laneKeys))
	}
	var id int64
	start := time.Now()
	err := h.prod.QueryRow(ctx, "INSERT INTO app.events (name, payload) VALUES ($1, $2::jsonb) RETURNING id", name, payload).Scan(&id)
	end := time.Now()
	if err != nil {
		return err // unknown outcome: the events table will tell
	}
	h.led.commit([]int64{id}, []string{name}, start, start, end, false)
	h.led.count(&h.led.singles, 1)
	return nil
}

// bulkSize is mostly small, sometimes a burst of thousands.
func bulkSize(rng *rand.Rand) int {
	switch r := rng.Float64(); {
	case r < 0.6:
		return 1 + rng.IntN(100)
	case r < 0.95:
		return 100 + rng.IntN(900)
	default:
		return 1000 + rng.IntN(4001)
	}
}

// keyedShare is the share of the events of nameOrdered that have a key.
const keyedShare = 0.9

// insertMixed inserts $2 rows of names drawn from $1, from producer $3; an
// event of name $4 has a key "k0" to "k<$5-1>" at payload.key, with
// probability $6.
const insertMixed = `INSERT INTO app.events (name, payload)
	SELECT name, CASE WHEN name = $4 AND random() < $6
		THEN jsonb_build_object('src', $3::text, 'n', g, 'key', 'k' || floor(random() * $5::int)::int)
		ELSE jsonb_build_object('src', $3::text, 'n', g) END
	FROM (SELECT g, ($1::text[])[1 + floor(random() * cardinality($1::text[]))::int] AS name
		FROM generate_series(1, $2::int) AS g OFFSET 0) AS r
	RETURNING id, name`

// insertRows inserts n rows of mixed names in tx and returns their ids and
// names.
func insertRows(ctx context.Context, tx pgx.Tx, n int, src string) ([]int64, []string, error) {
	rows, err := tx.Query(ctx, insertMixed, producerDraw, n, src, nameOrdered, laneKeys, keyedShare)
	if err != nil {
		return nil, nil, err
	}
	var ids []int64
	var names []string
	for rows.Next() {
		var id int64
		var name string
		if err := rows.Scan(&id, &name); err != nil {
			rows.Close()
			return nil, nil, err
		}
		ids = append(ids, id)
		names = append(names, name)
	}
	return ids, names, rows.Err()
}

// produceBulk commits 1 to 5,000 rows of several names in one transaction.
func (h *harness) produceBulk(ctx context.Context, rng *rand.Rand) error {
	tx, err := h.prod.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	ins := time.Now()
	ids, names, err := insertRows(ctx, tx, bulkSize(rng), "bulk")
	if err != nil {
		return err
	}
	start := time.Now()
	if err := tx.Commit(ctx); err != nil {
		h.led.uncertainCommit(ids, names, start, false)
		return fmt.Errorf("commit %d rows: %w", len(ids), err)
	}
	h.led.commit(ids, names, ins, start, time.Now(), false)
	h.led.count(&h.led.bulks, 1)
	h.led.count(&h.led.bulkRows, len(ids))
	return nil
}

// produceRollback inserts 1 to 50 rows and rolls back; sometimes one of the
// ids is hand-notified first. The ids are consumed from the sequence and
// must never get a job.
func (h *harness) produceRollback(ctx context.Context, rng *rand.Rand) error {
	tx, err := h.prod.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	ids, _, err := insertRows(ctx, tx, 1+rng.IntN(50), "rollback")
	if err != nil {
		return err
	}
	notified := int64(0)
	if rng.Float64() < 0.3 {
		notified = ids[rng.IntN(len(ids))]
	}
	// Recorded before anything else can fail: no COMMIT is ever sent, so
	// these ids never commit, whatever happens next.
	h.led.rollBack(ids, notified)
	if notified != 0 {
		h.sendNotify(ctx, notified, strconv.FormatInt(notified, 10), notifyRolledBack)
	}
	if err := tx.Rollback(ctx); err != nil {
		return fmt.Errorf("roll back: %w", err)
	}
	h.led.count(&h.led.rollbacks, 1)
	return nil
}

// produceNotify hand-sends a NOTIFY: for a committed id (sometimes spelled
// with leading zeros), for the id committed last, or for an id with no row.
func (h *harness) produceNotify(ctx context.Context, rng *rand.Rand) error {
	r := rng.Float64()
	if r < 0.6 {
		if id, ok := h.led.pickCommitted(rng, r >= 0.4); ok {
			kind, payload := notifyExisting, strconv.FormatInt(id, 10)
			if r >= 0.4 {
				kind = notifyFresh
			} else if rng.IntN(5) == 0 {
				payload = "00" + payload // the same event: recorded under its canonical id
			}
			return h.sendNotify(ctx, id, payload, kind)
		}
	}
	id := h.led.fakeID(rng)
	return h.sendNotify(ctx, id, strconv.FormatInt(id, 10), notifyNonexistent)
}

// produceLateCommit inserts 1 to 3 rows, hand-notifies their ids from
// another connection, waits up to 2.5 s (longer than --missing-grace, so
// some are recorded as missing first) and commits.
func (h *harness) produceLateCommit(ctx context.Context, rng *rand.Rand) error {
	tx, err := h.prod.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	ins := time.Now()
	ids, names, err := insertRows(ctx, tx, 1+rng.IntN(3), "late")
	if err != nil {
		return err
	}
	for _, id := range ids {
		h.sendNotify(ctx, id, strconv.FormatInt(id, 10), notifyBeforeCommit)
	}
	time.Sleep(between(rng, 0, 2500*time.Millisecond))
	start := time.Now()
	if err := tx.Commit(ctx); err != nil {
		h.led.uncertainCommit(ids, names, start, true)
		return fmt.Errorf("commit: %w", err)
	}
	h.led.commit(ids, names, ins, start, time.Now(), true)
	h.led.count(&h.led.lates, 1)
	return nil
}

// sendNotify sends `SELECT pg_notify(channel, payload)` on a connection of
// its own (not in any producer transaction) and records it.
func (h *harness) sendNotify(ctx context.Context, id int64, payload string, kind notifyKind) error {
	sent := time.Now()
	_, err := h.prod.Exec(ctx, "SELECT pg_notify($1, $2)", channel, payload)
	h.led.addNotify(notifyRec{id: id, payload: payload, kind: kind, sent: sent, ok: err == nil})
	return err
}

// insertCanary commits one canary event, retrying until it commits, and
// returns its id. It gives up after deadline.
func (h *harness) insertCanary(ctx context.Context, deadline time.Time) (int64, error) {
	for {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		var id int64
		start := time.Now()
		err := h.ctl.QueryRow(cctx, "INSERT INTO app.events (name, payload) VALUES ($1, '{\"src\": \"canary\"}') RETURNING id", nameCanary).Scan(&id)
		end := time.Now()
		cancel()
		if err == nil {
			h.led.commit([]int64{id}, []string{nameCanary}, start, start, end, false)
			h.led.count(&h.led.canaries, 1)
			return id, nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("insert canary: %w", err)
		}
		sleep(ctx, 100*time.Millisecond)
	}
}
