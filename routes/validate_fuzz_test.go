package routes_test

import (
	"context"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/notified/notified/internal/fuzzcorpus"
	"github.com/notified/notified/internal/testdb"
	"github.com/notified/notified/routes"
)

// routeSeeds are routes as typed on the command line: River's limits on
// kinds and queues, every queue separator, SQL and unicode in the names.
var routeSeeds = []routes.Route{
	{Event: "user_signed_up", Kind: "send_welcome_email"},
	{Event: "e", Kind: "k", Queue: "q", Priority: 4, MaxAttempts: 32767},
	{Event: "", Kind: "k"},
	{Event: "e", Kind: ""},
	{Event: "e", Kind: strings.Repeat("k", 127)},
	{Event: "e", Kind: strings.Repeat("k", 128)},
	{Event: "e", Kind: strings.Repeat("é", 127)},
	{Event: "e", Kind: strings.Repeat("😀", 128)},
	{Event: "e", Kind: "k", Queue: strings.Repeat("q", 64)},
	{Event: "e", Kind: "k", Queue: strings.Repeat("q", 65)},
	{Event: "e", Kind: "k", Queue: "a_b-c|d"},
	{Event: "e", Kind: "k", Queue: "a__b"},
	{Event: "e", Kind: "k", Queue: "-a"},
	{Event: "e", Kind: "k", Queue: "a-"},
	{Event: "e", Kind: "k", Queue: "Default"},
	{Event: "e", Kind: "k", Queue: "a\n"},
	{Event: "e", Kind: "k", Queue: "é"},
	{Event: "e", Kind: "k", Priority: -1},
	{Event: "e", Kind: "k", Priority: 5},
	{Event: "e", Kind: "k", MaxAttempts: -1},
	{Event: "e", Kind: "k", MaxAttempts: 32768},
	{Event: `e'); DROP TABLE x; --`, Kind: `k"; DROP TABLE x; --`},
	{Event: "événement", Kind: "tâche"},
	{Event: "new\nline", Kind: "\x1b[31m"},
	{Event: "nul\x00", Kind: "k"},
	{Event: "e", Kind: "\xff"},
}

func FuzzRouteValidate(f *testing.F) {
	for _, r := range routeSeeds {
		f.Add(r.Event, r.Kind, r.Queue, r.Priority, r.MaxAttempts)
	}
	f.Fuzz(func(t *testing.T, event, kind, queue string, priority, maxAttempts int) {
		r := routes.Route{Event: event, Kind: kind, Queue: queue, Priority: priority, MaxAttempts: maxAttempts}
		err := r.Validate()
		want := wantValid(r)
		if err != nil {
			require.False(t, want, "%+v refused: %v", r, err)
			return
		}
		require.True(t, want, "%+v accepted", r)
	})
}

// wantValid is River's and notified_route's rules, written out, after the
// defaults: an event name, a kind of 1 to 127 characters, a queue of at
// most 64 bytes made of lower-case letters and digits in groups separated by
// one _, - or |, priority 1 to 4, max attempts 1 to 32767 (smallint).
func wantValid(r routes.Route) bool {
	queue, priority, attempts := r.Queue, r.Priority, r.MaxAttempts
	if queue == "" {
		queue = "default"
	}
	if priority == 0 {
		priority = 1
	}
	if attempts == 0 {
		attempts = 25
	}
	n := utf8.RuneCountInString(r.Kind)
	return r.Event != "" && n >= 1 && n <= 127 && len(queue) <= 64 && queueOK(queue) &&
		priority >= 1 && priority <= 4 && attempts >= 1 && attempts <= 32767
}

func queueOK(q string) bool {
	sep := func(c byte) bool { return c == '_' || c == '-' || c == '|' }
	if q == "" || sep(q[0]) || sep(q[len(q)-1]) {
		return false
	}
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case c >= 'a' && c <= 'z' || c >= '0' && c <= '9':
		case sep(c) && !sep(q[i-1]):
		default:
			return false
		}
	}
	return true
}

// TestValidateAgreesWithTable takes every route of the FuzzRouteValidate
// seed corpus that Postgres can hold to a real notified_route table: the
// table's constraints accept a route exactly when Validate does, so the
// bridge never meets a stored route it would refuse, nor Validate a route
// the table would keep.
func TestValidateAgreesWithTable(t *testing.T) {
	t.Parallel()
	db := testdb.New(t, testdb.Options{NoEventsTable: true})
	ctx := context.Background()
	rs := append([]routes.Route(nil), routeSeeds...)
	for _, v := range fuzzcorpus.Read(t, "FuzzRouteValidate") {
		rs = append(rs, routes.Route{Event: v[0].(string), Kind: v[1].(string), Queue: v[2].(string), Priority: v[3].(int), MaxAttempts: v[4].(int)})
	}
	tried := 0
	for _, r := range rs {
		if !utf8.ValidString(r.Event+r.Kind+r.Queue) || strings.ContainsRune(r.Event+r.Kind+r.Queue, 0) ||
			r.Priority < -1<<15 || r.Priority >= 1<<15 || r.MaxAttempts < -1<<15 || r.MaxAttempts >= 1<<15 {
			continue
		}
		tried++
		err := r.Validate()
		tx, terr := db.Pool.Begin(ctx)
		require.NoError(t, terr)
		if err == nil {
			require.NoError(t, routes.NewStore(tx, db.Schema).Add(ctx, r), "%+v", r)
		} else {
			d := r
			if d.Queue == "" {
				d.Queue = "default"
			}
			if d.Priority == 0 {
				d.Priority = 1
			}
			if d.MaxAttempts == 0 {
				d.MaxAttempts = 25
			}
			_, ierr := tx.Exec(ctx, "INSERT INTO "+pgx.Identifier{db.Schema, "notified_route"}.Sanitize()+
				" (event_name, kind, queue, priority, max_attempts) VALUES ($1, $2, $3, $4, $5)",
				d.Event, d.Kind, d.Queue, d.Priority, d.MaxAttempts)
			require.Error(t, ierr, "Validate refuses %+v (%v), the table keeps it", r, err)
		}
		require.NoError(t, tx.Rollback(ctx))
	}
	require.Greater(t, tried, 15)
}
