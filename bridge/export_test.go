package bridge

import (
	"context"

	"github.com/notified/notified/internal/eventstable"
)

// SetTestHook makes every dispatch transaction of b call hook between its
// steps; an error from hook aborts the transaction as a crash would.
func SetTestHook(b *Bridge, hook func(step string) error) { b.testHook = hook }

// DispatchOnce runs one dispatch transaction and returns how many outbox rows
// it claimed.
func DispatchOnce(ctx context.Context, b *Bridge) (int, error) {
	res, err := b.dispatchBatch(ctx, selection{})
	if err != nil {
		return 0, err
	}
	b.afterCommit(res)
	return res.claimed, nil
}

// Steps of the dispatch transaction, for SetTestHook.
var Steps = []string{stepClaimed, stepFetched, stepRecorded, stepInserted}

// ParseIDForTest parses a payload as an id of a column whose type is
// typname (int2, int4, int8, uuid, text, varchar) spelled formatted.
func ParseIDForTest(typname, formatted, payload string) (string, error) {
	t, err := eventstable.ForIDType(typname, formatted)
	if err != nil {
		return "", ErrIDType
	}
	return t.ParseID(payload)
}

// ClaimSQL and FetchSQL are the queries of the dispatch transaction's claim
// and fetch, for plans in tests.
func ClaimSQL(b *Bridge) string { return b.q.claim }

// FetchSQL is the query that reads a batch's rows from the events table.
func FetchSQL(b *Bridge) string { return b.table.Load().fetch }

// WaitingNotifiedIDs returns how many notified ids with no row the bridge
// is waiting for.
func WaitingNotifiedIDs(b *Bridge) int64 { return b.waitingIDs.Load() }

// MaxHeldBytes returns the most row data one of b's batches has read.
func MaxHeldBytes(b *Bridge) int64 { return b.maxHeld.Load() }
