package jobs_test

import (
	"context"
	"sync"
	"testing"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/notified/notified/internal/testdb"
	"github.com/notified/notified/jobs"
	"github.com/notified/notified/routes"
)

func TestOnRegistersAndDeclares(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ctx := context.Background()
	store := routes.NewStore(db.Pool, db.Schema)

	got := make(chan string, 1)
	workers := river.NewWorkers()
	err := jobs.On(ctx, workers, store, routes.Route{Event: "user_signed_up", Kind: "send_welcome"},
		func(ctx context.Context, ev jobs.Event) (jobs.Result, error) {
			got <- ev.Name
			return jobs.Success(nil), nil
		})
	require.NoError(t, err)

	list, err := store.List(ctx)
	require.NoError(t, err)
	require.Equal(t, []routes.Route{{Event: "user_signed_up", Kind: "send_welcome", Queue: routes.DefaultQueue,
		Priority: routes.DefaultPriority, MaxAttempts: routes.DefaultMaxAttempts}}, list)

	client := startClient(t, db, workers)
	waitState(t, client, insert[sendWelcome](t, client, 1), rivertype.JobStateCompleted)
	require.Equal(t, "user_signed_up", <-got)
}

// Every start of every worker calls On: the route is declared once, and an
// operator's changes to it survive.
func TestOnAtEveryStartKeepsOperatorChanges(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ctx := context.Background()
	store := routes.NewStore(db.Pool, db.Schema)
	route := routes.Route{Event: "order_placed", Kind: "charge_order", Queue: "payments", MaxAttempts: 5}

	require.NoError(t, jobs.On(ctx, river.NewWorkers(), store, route, succeed))
	// The operator moves the route to another queue.
	require.NoError(t, store.Add(ctx, routes.Route{Event: "order_placed", Kind: "charge_order", Queue: "slow", Priority: 2, MaxAttempts: 3}))

	// Eight workers start at once.
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() { errs[i] = jobs.On(ctx, river.NewWorkers(), store, route, succeed) })
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	list, err := store.List(ctx)
	require.NoError(t, err)
	require.Equal(t, []routes.Route{{Event: "order_placed", Kind: "charge_order", Queue: "slow", Priority: 2, MaxAttempts: 3}}, list)

	// A worker whose options should win says so.
	require.NoError(t, store.Ensure(ctx, route))
	list, err = store.List(ctx)
	require.NoError(t, err)
	require.Equal(t, "payments", list[0].Queue)
}

// Many workers declaring a route none of them found: one route, no error.
func TestOnConcurrentFirstStart(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ctx := context.Background()
	store := routes.NewStore(db.Pool, db.Schema)

	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() {
			errs[i] = jobs.On(ctx, river.NewWorkers(), store, routes.Route{Event: "my_event", Kind: "my_handler"}, succeed)
		})
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	require.Equal(t, 1, testdb.Count(t, db.Pool, "SELECT count(*) FROM "+db.Schema+".notified_route"))
}

func TestOnErrors(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ctx := context.Background()
	store := routes.NewStore(db.Pool, db.Schema)
	route := routes.Route{Event: "my_event", Kind: "my_handler"}

	cases := []struct {
		name    string
		workers *river.Workers
		store   *routes.Store
		route   routes.Route
		fn      jobs.HandlerFunc
		want    string
	}{
		{"nil store", river.NewWorkers(), nil, route, succeed, "jobs.On: store is nil: pass routes.NewStore(pool, schema)"},
		{"nil workers", nil, store, route, succeed, "jobs.On: workers is nil: pass the river.Workers the client will be given"},
		{"nil handler", river.NewWorkers(), store, route, nil, `jobs.On: handler for kind "my_handler" is nil`},
		{"no event", river.NewWorkers(), store, routes.Route{Kind: "my_handler"}, succeed, "jobs.On: route: event name is empty"},
		{"no kind", river.NewWorkers(), store, routes.Route{Event: "my_event"}, succeed, `jobs.On: route for event "my_event": handler kind is empty`},
		{"bad queue", river.NewWorkers(), store, routes.Route{Event: "my_event", Kind: "my_handler", Queue: "Bad Queue"}, succeed,
			`jobs.On: route my_event -> my_handler: queue "Bad Queue" is invalid: use lower-case letters and digits separated by _ or -, at most 64 characters`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			require.EqualError(t, jobs.On(ctx, tc.workers, tc.store, tc.route, tc.fn), tc.want)
		})
	}

	// A kind registered twice: the second route is not declared.
	workers := river.NewWorkers()
	require.NoError(t, jobs.On(ctx, workers, store, route, succeed))
	err := jobs.On(ctx, workers, store, routes.Route{Event: "other_event", Kind: "my_handler"}, succeed)
	require.EqualError(t, err, `register handler my_handler: worker for kind "my_handler" is already registered`)

	// A schema without notified's tables: the worker is told which route
	// failed.
	bare := testdb.New(t, testdb.Options{NoMigrate: true, NoEventsTable: true})
	err = jobs.On(ctx, river.NewWorkers(), routes.NewStore(bare.Pool, bare.Schema), route, succeed)
	require.ErrorContains(t, err, "add route my_event -> my_handler")
	require.ErrorContains(t, err, "notified_route")

	// Nothing but the first route was declared.
	list, err := store.List(ctx)
	require.NoError(t, err)
	require.Len(t, list, 1)
	require.Equal(t, "my_event", list[0].Event)
}
