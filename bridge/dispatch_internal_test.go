package bridge

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/notified/notified/history"
	"github.com/notified/notified/internal/eventstable"
	"github.com/notified/notified/routes"
)

// TestDecide: each event's outcome from its row and the routes of its name,
// without a database.
func TestDecide(t *testing.T) {
	t.Parallel()
	name := func(s string) *string { return &s }
	signup := []routes.Route{{Event: "signup", Kind: "welcome", Queue: "default", Priority: 1, MaxAttempts: 25}}
	rules := decideRules{grace: 30 * time.Second, table: &eventstable.Table{Display: "app.events", IDName: "id", NameName: "name"}}
	created := time.Date(2026, 12, 6, 3, 0, 0, 0, time.UTC)
	young := claimedRow{seq: 1, payload: "007", createdAt: created, age: time.Second}
	old := claimedRow{seq: 2, payload: "8", createdAt: created, age: time.Minute}
	for _, tc := range []struct {
		name     string
		claimed  claimedRow
		row      *eventRow
		poison   error
		want     *outcomeRecord // nil: not recorded
		requeue  bool
		deferred bool
	}{
		{name: "dispatched to its routes", claimed: young, row: &eventRow{name: name("signup"), data: []byte(`{"id":7}`)},
			want: &outcomeRecord{outcome: history.OutcomeDispatched, name: name("signup"), routes: signup, jobs: signup, data: []byte(`{"id":7}`)}},
		{name: "large row dispatched by the server", claimed: young, row: &eventRow{name: name("signup"), placement: eventstable.RowLarge},
			want: &outcomeRecord{outcome: history.OutcomeDispatched, name: name("signup"), routes: signup, jobs: signup, large: true}},
		{name: "no route", claimed: young, row: &eventRow{name: name("order")},
			want: &outcomeRecord{outcome: history.OutcomeUnrouted, name: name("order"), reason: name(`no route for event name "order"`)}},
		{name: "NULL name", claimed: young, row: &eventRow{},
			want: &outcomeRecord{outcome: history.OutcomeRejected, reason: name("name column name is NULL")}},
		{name: "no row yet", claimed: young, requeue: true},
		{name: "no row after the grace", claimed: old,
			want: &outcomeRecord{outcome: history.OutcomeMissing, reason: name("no row in app.events with id = 7 after 30s")}},
		{name: "past the byte budget", claimed: young, row: &eventRow{name: name("signup"), placement: eventstable.RowDeferred}, deferred: true},
		{name: "isolated as bad", claimed: young, poison: errors.New("insert 1 jobs: boom"),
			want: &outcomeRecord{outcome: history.OutcomeRejected, reason: name("row 7 of app.events cannot become a job: insert 1 jobs: boom; fix the row and replay the event")}},
	} {
		p := parsed{ids: []string{"7"}, byKey: map[string]claimedRow{"7": tc.claimed}}
		found := map[string]eventRow{}
		if tc.row != nil {
			found["7"] = *tc.row
		}
		d := decide(p, found, map[string][]routes.Route{"signup": signup}, tc.poison, rules)
		if tc.want == nil {
			require.Empty(t, d.records, tc.name)
		} else {
			want := *tc.want
			want.key, want.createdAt, want.age = "7", tc.claimed.createdAt, tc.claimed.age
			require.Equal(t, []outcomeRecord{want}, d.records, tc.name)
		}
		if tc.requeue {
			require.Equal(t, []claimedRow{{seq: tc.claimed.seq, payload: "7", createdAt: created, age: tc.claimed.age}}, d.requeue, "%s: requeued under its canonical id", tc.name)
		} else {
			require.Empty(t, d.requeue, tc.name)
		}
		if tc.deferred {
			require.Equal(t, []claimedRow{tc.claimed}, d.deferred, tc.name)
		} else {
			require.Empty(t, d.deferred, tc.name)
		}
	}
}

// TestParseClaimed: payloads become canonical ids once each; those that are
// not ids are rejected under their record key.
func TestParseClaimed(t *testing.T) {
	t.Parallel()
	tbl, err := eventstable.ForIDType("int8", "bigint")
	require.NoError(t, err)
	at := time.Date(2026, 12, 6, 3, 0, 0, 0, time.UTC)
	rows := []claimedRow{{seq: 1, payload: "42", createdAt: at}, {seq: 2, payload: "042", createdAt: at},
		{seq: 3, payload: "abc", createdAt: at}, {seq: 4, payload: "abc", createdAt: at}, {seq: 5, payload: "7", createdAt: at}}
	p := parseClaimed(tbl, rows)
	require.Equal(t, []string{"42", "7"}, p.ids)
	require.Equal(t, 2, p.dupes, "042 is 42; abc twice")
	require.Len(t, p.rejected, 1)
	require.Equal(t, "abc", p.rejected[0].key)
	require.Equal(t, `payload "abc" is not a valid bigint id`, *p.rejected[0].reason)
	require.Equal(t, int64(1), p.byKey["42"].seq)
}

// TestEncodeRouteSetsWithFilters: events of one name share a route set only
// when their filters gave the same results.
func TestEncodeRouteSetsWithFilters(t *testing.T) {
	t.Parallel()
	name := "order"
	rs := []routes.Route{{Event: name, Kind: "big", Queue: "default", Priority: 1, MaxAttempts: 25, Where: "$.total > 1000"}}
	recs := []outcomeRecord{
		{key: "1", name: &name, routes: rs, jobs: rs},
		{key: "2", name: &name, routes: rs, skipped: []string{history.SkippedByFilter}},
		{key: "3", name: &name, routes: rs, jobs: rs},
		{key: "4", outcome: history.OutcomeMissing},
	}
	index, sets, err := encodeRouteSets(recs)
	require.NoError(t, err)
	require.Equal(t, []int32{1, 2, 1, 3}, index)
	require.Equal(t, []string{
		`[{"kind":"big","queue":"default","priority":1,"max_attempts":25,"where":"$.total \u003e 1000"}]`,
		`[{"kind":"big","queue":"default","priority":1,"max_attempts":25,"where":"$.total \u003e 1000","skipped":"filter"}]`,
		`[]`,
	}, sets)
}
