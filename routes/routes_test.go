package routes_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/stretchr/testify/require"

	"github.com/notified/notified/internal/testdb"
	"github.com/notified/notified/routes"
)

func TestValidate(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("k", 128)
	tests := []struct {
		name    string
		route   routes.Route
		wantErr string // empty: valid
	}{
		{name: "minimal", route: routes.Route{Event: "user_signed_up", Kind: "send_welcome"}},
		{name: "all set", route: routes.Route{Event: "e", Kind: "k", Queue: "mail_out-2", Priority: 4, MaxAttempts: 32767}},
		{name: "kind of 127 characters", route: routes.Route{Event: "e", Kind: strings.Repeat("k", 127)}},
		{name: "kind of 127 multibyte characters", route: routes.Route{Event: "e", Kind: strings.Repeat("ü", 127)}},
		{name: "queue of 64 characters", route: routes.Route{Event: "e", Kind: "k", Queue: strings.Repeat("q", 64)}},
		{name: "priority 0 takes the default", route: routes.Route{Event: "e", Kind: "k", Priority: 0}},
		{name: "priority 1", route: routes.Route{Event: "e", Kind: "k", Priority: 1}},
		{name: "max attempts 0 takes the default", route: routes.Route{Event: "e", Kind: "k", MaxAttempts: 0}},
		{name: "max attempts 1", route: routes.Route{Event: "e", Kind: "k", MaxAttempts: 1}},

		{name: "empty event", route: routes.Route{Kind: "k"}, wantErr: "route: event name is empty"},
		{name: "empty kind", route: routes.Route{Event: "e"}, wantErr: `route for event "e": handler kind is empty`},
		{name: "kind longer than 127", route: routes.Route{Event: "e", Kind: long}, wantErr: "handler kind is longer than 127 characters, River's limit"},
		{name: "queue with a space and capitals", route: routes.Route{Event: "e", Kind: "k", Queue: "Bad Queue"}, wantErr: `route e -> k: queue "Bad Queue" is invalid`},
		{name: "queue with punctuation", route: routes.Route{Event: "e", Kind: "k", Queue: "q!"}, wantErr: `queue "q!" is invalid`},
		{name: "queue with upper case", route: routes.Route{Event: "e", Kind: "k", Queue: "Mail"}, wantErr: `queue "Mail" is invalid`},
		{name: "queue ending in a separator", route: routes.Route{Event: "e", Kind: "k", Queue: "mail_"}, wantErr: `queue "mail_" is invalid`},
		{name: "queue of 65 characters", route: routes.Route{Event: "e", Kind: "k", Queue: strings.Repeat("q", 65)}, wantErr: "is invalid: use lower-case letters and digits"},
		{name: "priority 5", route: routes.Route{Event: "e", Kind: "k", Priority: 5}, wantErr: "route e -> k: priority 5 is out of range: use 1 (highest) to 4"},
		{name: "priority -1", route: routes.Route{Event: "e", Kind: "k", Priority: -1}, wantErr: "priority -1 is out of range"},
		{name: "max attempts -1", route: routes.Route{Event: "e", Kind: "k", MaxAttempts: -1}, wantErr: "route e -> k: max attempts -1 is out of range: use 1 to 32767"},
		{name: "max attempts 32768", route: routes.Route{Event: "e", Kind: "k", MaxAttempts: 32768}, wantErr: "max attempts 32768 is out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.route.Validate()
			if tt.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			require.Contains(t, err.Error(), tt.wantErr)
		})
	}
}

func TestValidateLongKindMessageIsShort(t *testing.T) {
	t.Parallel()
	err := routes.Route{Event: "e", Kind: strings.Repeat("k", 1000)}.Validate()
	require.Error(t, err)
	require.Less(t, len(err.Error()), 200, "the message cuts the kind: %s", err)
}

func TestAddAppliesDefaults(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ctx := context.Background()
	s := routes.NewStore(db.Pool, db.Schema)

	require.NoError(t, s.Add(ctx, routes.Route{Event: "user_signed_up", Kind: "send_welcome"}))
	got, err := s.List(ctx)
	require.NoError(t, err)
	require.Equal(t, []routes.Route{{
		Event:       "user_signed_up",
		Kind:        "send_welcome",
		Queue:       routes.DefaultQueue,
		Priority:    routes.DefaultPriority,
		MaxAttempts: routes.DefaultMaxAttempts,
	}}, got)
	require.Equal(t, "default", routes.DefaultQueue)
	require.Equal(t, 1, routes.DefaultPriority)
	require.Equal(t, 25, routes.DefaultMaxAttempts)
}

func TestAddTwiceUpdates(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ctx := context.Background()
	s := routes.NewStore(db.Pool, db.Schema)

	require.NoError(t, s.Add(ctx, routes.Route{Event: "e", Kind: "k", Queue: "mail", Priority: 2, MaxAttempts: 3}))
	var created1, updated1 time.Time
	require.NoError(t, db.Pool.QueryRow(ctx, "SELECT created_at, updated_at FROM "+pgx.Identifier{db.Schema, "notified_route"}.Sanitize()).
		Scan(&created1, &updated1))

	require.NoError(t, s.Add(ctx, routes.Route{Event: "e", Kind: "k", Queue: "bulk", Priority: 4, MaxAttempts: 9}))
	got, err := s.List(ctx)
	require.NoError(t, err)
	require.Equal(t, []routes.Route{{Event: "e", Kind: "k", Queue: "bulk", Priority: 4, MaxAttempts: 9}}, got)

	var created2, updated2 time.Time
	require.NoError(t, db.Pool.QueryRow(ctx, "SELECT created_at, updated_at FROM "+pgx.Identifier{db.Schema, "notified_route"}.Sanitize()).
		Scan(&created2, &updated2))
	require.True(t, created1.Equal(created2), "created_at is kept")
	require.False(t, updated2.Before(updated1), "updated_at moves forward")

	// Adding again without options resets them to the defaults.
	require.NoError(t, s.Add(ctx, routes.Route{Event: "e", Kind: "k"}))
	got, err = s.List(ctx)
	require.NoError(t, err)
	require.Equal(t, []routes.Route{{Event: "e", Kind: "k", Queue: "default", Priority: 1, MaxAttempts: 25}}, got)
}

func TestAddInvalidWritesNothing(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ctx := context.Background()
	s := routes.NewStore(db.Pool, db.Schema)

	err := s.Add(ctx, routes.Route{Event: "e", Kind: "k", Queue: "Bad Queue"})
	require.ErrorContains(t, err, `queue "Bad Queue" is invalid`)
	got, err := s.List(ctx)
	require.NoError(t, err)
	require.Empty(t, got)
}

func TestListOrdered(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ctx := context.Background()
	s := routes.NewStore(db.Pool, db.Schema)

	empty, err := s.List(ctx)
	require.NoError(t, err)
	require.Empty(t, empty)

	for _, r := range []routes.Route{
		{Event: "b", Kind: "z"},
		{Event: "a", Kind: "y"},
		{Event: "b", Kind: "a"},
		{Event: "a", Kind: "b"},
	} {
		require.NoError(t, s.Add(ctx, r))
	}
	got, err := s.List(ctx)
	require.NoError(t, err)
	pairs := make([]string, len(got))
	for i, r := range got {
		pairs[i] = r.Event + "->" + r.Kind
	}
	require.Equal(t, []string{"a->b", "a->y", "b->a", "b->z"}, pairs)
}

func TestRemove(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ctx := context.Background()
	s := routes.NewStore(db.Pool, db.Schema)

	require.NoError(t, s.Add(ctx, routes.Route{Event: "e", Kind: "k1"}))
	require.NoError(t, s.Add(ctx, routes.Route{Event: "e", Kind: "k2"}))

	ok, err := s.Remove(ctx, "e", "k1")
	require.NoError(t, err)
	require.True(t, ok)

	ok, err = s.Remove(ctx, "e", "k1")
	require.NoError(t, err)
	require.False(t, ok, "removing it again finds nothing")

	ok, err = s.Remove(ctx, "nope", "k2")
	require.NoError(t, err)
	require.False(t, ok)

	got, err := s.List(ctx)
	require.NoError(t, err)
	require.Equal(t, []routes.Route{{Event: "e", Kind: "k2", Queue: "default", Priority: 1, MaxAttempts: 25}}, got)
}

func TestEnsure(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ctx := context.Background()
	s := routes.NewStore(db.Pool, db.Schema)

	require.NoError(t, s.Add(ctx, routes.Route{Event: "keep", Kind: "me"}))
	require.NoError(t, s.Add(ctx, routes.Route{Event: "e", Kind: "k1", Priority: 3}))

	require.NoError(t, s.Ensure(ctx,
		routes.Route{Event: "e", Kind: "k1", Priority: 2},
		routes.Route{Event: "e", Kind: "k2", Queue: "mail"},
	))
	got, err := s.List(ctx)
	require.NoError(t, err)
	require.Equal(t, []routes.Route{
		{Event: "e", Kind: "k1", Queue: "default", Priority: 2, MaxAttempts: 25},
		{Event: "e", Kind: "k2", Queue: "mail", Priority: 1, MaxAttempts: 25},
		{Event: "keep", Kind: "me", Queue: "default", Priority: 1, MaxAttempts: 25},
	}, got, "routes not given are left alone")

	// Ensuring nothing is a no-op.
	require.NoError(t, s.Ensure(ctx))
}

func TestEnsureValidatesAllBeforeWriting(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ctx := context.Background()
	s := routes.NewStore(db.Pool, db.Schema)

	err := s.Ensure(ctx,
		routes.Route{Event: "a", Kind: "first"},
		routes.Route{Event: "b", Kind: "second"},
		routes.Route{Event: "c", Kind: "bad", Priority: 5},
		routes.Route{Event: "d", Kind: "fourth"},
	)
	require.Error(t, err)
	require.Contains(t, err.Error(), "route c -> bad: priority 5 is out of range")

	got, err := s.List(ctx)
	require.NoError(t, err)
	require.Empty(t, got, "no route is written when one is invalid")
	require.Zero(t, testdb.Count(t, db.Pool, "SELECT count(*) FROM "+pgx.Identifier{db.Schema, "notified_route"}.Sanitize()))
}

func TestEnsureInTransaction(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ctx := context.Background()

	tx, err := db.Pool.Begin(ctx)
	require.NoError(t, err)
	require.NoError(t, routes.NewStore(tx, db.Schema).Ensure(ctx, routes.Route{Event: "e", Kind: "k"}))
	require.NoError(t, tx.Rollback(ctx))

	got, err := routes.NewStore(db.Pool, db.Schema).List(ctx)
	require.NoError(t, err)
	require.Empty(t, got, "a rolled-back Ensure leaves nothing")
}

func TestStoreCurrentSchema(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ctx := context.Background()

	conn := testdb.SearchPathConn(t, db)

	s := routes.NewStore(conn, "")
	require.NoError(t, s.Add(ctx, routes.Route{Event: "e", Kind: "k"}))
	got, err := routes.NewStore(db.Pool, db.Schema).List(ctx)
	require.NoError(t, err)
	require.Len(t, got, 1)
}

func TestStoreErrors(t *testing.T) {
	t.Parallel()
	db := testdb.New(t, testdb.Options{NoMigrate: true, NoEventsTable: true})
	ctx := context.Background()
	s := routes.NewStore(db.Pool, db.Schema)

	err := s.Add(ctx, routes.Route{Event: "e", Kind: "k"})
	require.ErrorContains(t, err, "add route e -> k:")
	require.ErrorContains(t, err, "does not exist")

	err = s.Ensure(ctx, routes.Route{Event: "e", Kind: "k"})
	require.ErrorContains(t, err, "add route e -> k:")

	_, err = s.Remove(ctx, "e", "k")
	require.ErrorContains(t, err, "remove route e -> k:")

	_, err = s.List(ctx)
	require.ErrorContains(t, err, "list routes:")
	require.ErrorContains(t, err, "does not exist")
}

// TestCheckConstraints inserts invalid routes past the store, straight into
// the table, as a hand-written INSERT would: the database refuses them, so
// the bridge can never read a route River would reject.
func TestCheckConstraints(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ctx := context.Background()
	table := pgx.Identifier{db.Schema, "notified_route"}.Sanitize()

	tests := []struct {
		name                  string
		event, kind, queue    string
		priority, maxAttempts int
		wantConstraint        string
	}{
		{"queue with a space", "e", "k", "Bad Queue", 1, 25, "notified_route_queue_check"},
		{"queue with punctuation", "e", "k", "q!", 1, 25, "notified_route_queue_check"},
		{"queue upper case", "e", "k", "Mail", 1, 25, "notified_route_queue_check"},
		{"queue empty", "e", "k", "", 1, 25, "notified_route_queue_check"},
		{"queue too long", "e", "k", strings.Repeat("q", 65), 1, 25, "notified_route_queue_check"},
		{"event empty", "", "k", "default", 1, 25, "notified_route_event_name_check"},
		{"kind empty", "e", "", "default", 1, 25, "notified_route_kind_check"},
		{"kind too long", "e", strings.Repeat("k", 256), "default", 1, 25, "notified_route_kind_check"},
		{"priority 0", "e", "k", "default", 0, 25, "notified_route_priority_check"},
		{"priority 5", "e", "k", "default", 5, 25, "notified_route_priority_check"},
		{"max attempts 0", "e", "k", "default", 1, 0, "notified_route_max_attempts_check"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := db.Pool.Exec(ctx, "INSERT INTO "+table+" (event_name, kind, queue, priority, max_attempts) VALUES ($1, $2, $3, $4, $5)",
				tt.event, tt.kind, tt.queue, tt.priority, tt.maxAttempts)
			require.Error(t, err)
			var pgErr *pgconn.PgError
			require.ErrorAs(t, err, &pgErr)
			require.Equal(t, "23514", pgErr.Code, "check_violation: %s", pgErr.Message)
			require.Equal(t, tt.wantConstraint, pgErr.ConstraintName)
		})
	}

	// An UPDATE cannot sneak an invalid queue in either.
	require.NoError(t, routes.NewStore(db.Pool, db.Schema).Add(ctx, routes.Route{Event: "e", Kind: "k"}))
	_, err := db.Pool.Exec(ctx, "UPDATE "+table+" SET queue = 'Bad Queue'")
	var pgErr *pgconn.PgError
	require.ErrorAs(t, err, &pgErr)
	require.Equal(t, "23514", pgErr.Code)

	// A valid direct insert is accepted and listed.
	_, err = db.Pool.Exec(ctx, "INSERT INTO "+table+" (event_name, kind, queue) VALUES ('e', 'k2', 'mail-out_2')")
	require.NoError(t, err)
	got, err := routes.NewStore(db.Pool, db.Schema).List(ctx)
	require.NoError(t, err)
	require.Len(t, got, 2)
	for _, r := range got {
		require.NoError(t, r.Validate(), "every route the table holds is valid: %+v", r)
	}
}

// TestDatabaseAndValidateAgree checks that Validate and the table's CHECK
// constraints accept and reject the same queues, so a route the store
// accepts always reaches the table and one it rejects can never be there.
func TestDatabaseAndValidateAgree(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ctx := context.Background()
	table := pgx.Identifier{db.Schema, "notified_route"}.Sanitize()

	queues := []string{"default", "a", "a1", "mail_out", "mail-out", "a|b", "a_b-c|d", "_a", "a_", "a__b", "a-_b", "A", "a b", "a.b", "é", strings.Repeat("z", 64), strings.Repeat("z", 65)}
	for i, q := range queues {
		validateErr := routes.Route{Event: "e", Kind: "k", Queue: q}.Validate()
		_, dbErr := db.Pool.Exec(ctx, "INSERT INTO "+table+" (event_name, kind, queue) VALUES ('e', $1, $2)", "k"+strings.Repeat("x", i), q)
		require.Equal(t, validateErr == nil, dbErr == nil, "queue %q: Validate says %v, the table says %v", q, validateErr, dbErr)
	}
}

// kindArgs is job args of any kind, as the bridge inserts them.
type kindArgs struct {
	kind string
}

func (a kindArgs) Kind() string { return a.kind }

// TestValidateAgreesWithRiver checks that a route Validate accepts is one
// River accepts a job for: the bridge inserts the jobs of a whole batch in one
// transaction, so a route River rejects fails every batch with its event.
func TestValidateAgreesWithRiver(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ctx := context.Background()
	client, err := river.NewClient(riverpgxv5.New(db.Pool), &river.Config{Schema: db.Schema, TestOnly: true})
	require.NoError(t, err)

	for _, r := range []routes.Route{
		{Event: "e", Kind: strings.Repeat("k", 127)},
		{Event: "e", Kind: strings.Repeat("k", 128)},
		{Event: "e", Kind: strings.Repeat("k", 255)},
		{Event: "e", Kind: "k", Queue: strings.Repeat("q", 64), Priority: 4, MaxAttempts: 32767},
		{Event: "e", Kind: "k", Queue: "a|b"},
	} {
		validateErr := r.Validate()
		queue, priority, maxAttempts := r.Queue, r.Priority, r.MaxAttempts
		if queue == "" {
			queue = routes.DefaultQueue
		}
		_, insertErr := client.Insert(ctx, kindArgs{kind: r.Kind}, &river.InsertOpts{Queue: queue, Priority: priority, MaxAttempts: maxAttempts})
		require.Equal(t, validateErr == nil, insertErr == nil,
			"route with kind of %d characters, queue %q: Validate says %v, River says %v", len(r.Kind), queue, validateErr, insertErr)
	}
}

func TestAddMissingKeepsExistingRoutes(t *testing.T) {
	t.Parallel()
	db := testdb.New(t, testdb.Options{NoEventsTable: true})
	ctx := context.Background()
	store := routes.NewStore(db.Pool, db.Schema)
	require.NoError(t, store.Add(ctx, routes.Route{Event: "e", Kind: "k", Queue: "special", Priority: 3}))

	added, err := store.AddMissing(ctx, routes.Route{Event: "e", Kind: "k"}, routes.Route{Event: "e", Kind: "k2"})
	require.NoError(t, err)
	require.Equal(t, []routes.Route{{Event: "e", Kind: "k2", Queue: "default", Priority: 1, MaxAttempts: 25}}, added)
	got, err := store.List(ctx)
	require.NoError(t, err)
	require.Equal(t, []routes.Route{
		{Event: "e", Kind: "k", Queue: "special", Priority: 3, MaxAttempts: 25},
		{Event: "e", Kind: "k2", Queue: "default", Priority: 1, MaxAttempts: 25},
	}, got)

	// All are validated before any is written.
	_, err = store.AddMissing(ctx, routes.Route{Event: "e", Kind: "k3"}, routes.Route{Event: "", Kind: "k4"})
	require.Error(t, err)
	got, err = store.List(ctx)
	require.NoError(t, err)
	require.Len(t, got, 2)
}
