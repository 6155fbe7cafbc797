package bridge

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/notified/notified/jobs"
	"github.com/notified/notified/routes"
)

// TestJobMetadataIsTheJSONEncoding: the metadata is
// byte for byte what encoding/json writes, whatever the ids and names hold.
func TestJobMetadataIsTheJSONEncoding(t *testing.T) {
	t.Parallel()
	rs := []routes.Route{{Kind: "a", Queue: "default", Priority: 1, MaxAttempts: 25}, {Kind: "b", Queue: "mail", Priority: 2, MaxAttempts: 3}}
	for _, src := range []jobs.Source{
		{EventID: "42", EventName: "user.signed_up", Channel: "events"},
		{EventID: "0b9c6d5e-1f2a-4b3c-8d4e-5f6a7b8c9d0e", EventName: "order paid", Channel: "MyEvents"},
		{EventID: "42", EventName: `say "hi"\now`, Channel: "events"},
		{EventID: "42", EventName: "<script>&amp;", Channel: "ev-ents"},
		{EventID: "42", EventName: "café ☕", Channel: "événements"},
		{EventID: "42", EventName: "tab\there\x00", Channel: "events"},
		{EventID: "", EventName: "", Channel: ""},
		{EventID: "7", EventName: "signup", Channel: "events", ReplayID: 12},
	} {
		params, err := appendJobParams(nil, src, []byte(`{"id":42}`), rs)
		require.NoError(t, err)
		require.Len(t, params, len(rs))
		want, err := json.Marshal(map[string]jobs.Source{jobs.MetadataKey: src})
		require.NoError(t, err)
		for i, p := range params {
			require.Equal(t, string(want), string(p.InsertOpts.Metadata), "source %+v", src)
			require.Equal(t, rs[i].Queue, p.InsertOpts.Queue)
			require.Equal(t, rs[i].Priority, p.InsertOpts.Priority)
			require.Equal(t, rs[i].MaxAttempts, p.InsertOpts.MaxAttempts)
			require.Equal(t, rs[i].Kind, p.Args.Kind())
		}
	}
}

// TestDecide: each event's outcome from its row and the routes of its name,
// without a database.
func TestDecide(t *testing.T) {
	t.Parallel()
	name := func(s string) *string { return &s }
	signup := []routes.Route{{Event: "signup", Kind: "welcome", Queue: "default", Priority: 1, MaxAttempts: 25}}
	rules := decideRules{grace: 30 * time.Second, table: "app.events", idColumn: "id", nameColumn: "name"}
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
			want: &outcomeRecord{outcome: OutcomeDispatched, name: name("signup"), jobs: signup, data: []byte(`{"id":7}`)}},
		{name: "large row dispatched by the server", claimed: young, row: &eventRow{name: name("signup"), placement: rowLarge},
			want: &outcomeRecord{outcome: OutcomeDispatched, name: name("signup"), jobs: signup, large: true}},
		{name: "no route", claimed: young, row: &eventRow{name: name("order")},
			want: &outcomeRecord{outcome: OutcomeUnrouted, name: name("order"), reason: name(`no route for event name "order"`)}},
		{name: "NULL name", claimed: young, row: &eventRow{},
			want: &outcomeRecord{outcome: OutcomeRejected, reason: name("name column name is NULL")}},
		{name: "no row yet", claimed: young, requeue: true},
		{name: "no row after the grace", claimed: old,
			want: &outcomeRecord{outcome: OutcomeMissing, reason: name("no row in app.events with id = 7 after 30s")}},
		{name: "past the byte budget", claimed: young, row: &eventRow{name: name("signup"), placement: rowDeferred}, deferred: true},
		{name: "isolated as bad", claimed: young, poison: errors.New("insert 1 jobs: boom"),
			want: &outcomeRecord{outcome: OutcomeRejected, reason: name("row 7 of app.events cannot become a job: insert 1 jobs: boom; fix the row and replay the event")}},
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
	tbl := &eventTable{}
	require.True(t, tbl.setIDType("int8", "bigint"))
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
