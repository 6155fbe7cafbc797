package bridge

import (
	"strconv"
	"testing"

	"github.com/riverqueue/river"

	"github.com/notified/notified/history"
	"github.com/notified/notified/internal/eventstable"
	"github.com/notified/notified/internal/jobparams"
	"github.com/notified/notified/jobs"
	"github.com/notified/notified/routes"
)

// The hot paths of dispatch, without a database, for a batch of 1,000
// events. Run with allocations, and compare before and after a change:
//
//	go test ./bridge -run '^$' -bench 'Notifications|JobParams|RouteSets' -benchmem -count 5

const hotBatch = 1000

// BenchmarkDecodeNotifications decodes a batch of notified payloads into
// the ids to look up: half of them were dispatched by this bridge just
// before, as in a burst.
func BenchmarkDecodeNotifications(b *testing.B) {
	t, _ := eventstable.ForIDType("int8", "bigint")
	br := &Bridge{recent: newRecentSet(1 << 16)}
	br.table.Store(&tableState{t: t})
	payloads := make([]string, hotBatch)
	var recent []string
	for i := range payloads {
		payloads[i] = strconv.Itoa(1_000_000 + i)
		if i%2 == 0 {
			recent = append(recent, payloads[i])
		}
	}
	br.recent.add(recent)
	b.ReportAllocs()
	for b.Loop() {
		ids, notIDs, _ := br.decodePending(payloads)
		if len(ids) != hotBatch/2 || notIDs != 0 {
			b.Fatalf("ids to look up %d, not ids %d", len(ids), notIDs)
		}
	}
}

// BenchmarkBuildJobParams builds River's insert parameters for a batch of
// events with one route each, rows of about 200 bytes.
func BenchmarkBuildJobParams(b *testing.B) {
	rs := []routes.Route{{Event: "signup", Kind: "welcome", Queue: "default", Priority: 1, MaxAttempts: 25}}
	data := make([][]byte, hotBatch)
	for i := range data {
		id := strconv.Itoa(i)
		data[i] = []byte(`{"id":` + id + `,"name":"signup","data":{"plan": "pro", "email": "user` + id +
			`@example.com", "amount": 42.50, "user_id": ` + id + `},"created_at":"2026-11-27T15:04:05.123456+00:00"}`)
	}
	params := make([]river.InsertManyParams, 0, hotBatch)
	b.ReportAllocs()
	for b.Loop() {
		params = params[:0]
		var err error
		for i := range data {
			src := jobs.Source{EventID: strconv.Itoa(i), EventName: "signup", Channel: "events"}
			if params, err = jobparams.Append(params, src, data[i], rs, nil, nil); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkEncodeRouteSets encodes the route sets of a batch's outcome
// records for notified_dispatch: three event names, two routes each.
func BenchmarkEncodeRouteSets(b *testing.B) {
	byName := map[string][]routes.Route{}
	names := []string{"signup", "order.paid", "order.shipped"}
	for _, n := range names {
		byName[n] = []routes.Route{{Event: n, Kind: n + "_a", Queue: "default", Priority: 1, MaxAttempts: 25},
			{Event: n, Kind: n + "_b", Queue: "default", Priority: 1, MaxAttempts: 25}}
	}
	records := make([]outcomeRecord, hotBatch)
	for i := range records {
		n := names[i%len(names)]
		records[i] = outcomeRecord{key: strconv.Itoa(i), name: &n, outcome: history.OutcomeDispatched, routes: byName[n], jobs: byName[n]}
	}
	b.ReportAllocs()
	for b.Loop() {
		idx, sets, err := encodeRouteSets(records)
		if err != nil || len(idx) != hotBatch || len(sets) != len(names) {
			b.Fatalf("%d indexes, %d sets, %v", len(idx), len(sets), err)
		}
	}
}
