package jobs

import (
	"context"
	"errors"
	"fmt"

	"github.com/riverqueue/river"

	"github.com/notified/notified/routes"
)

// On says in one place that events named route.Event run fn: it registers
// fn as the worker for route.Kind (as HandleFunc does) and declares the
// route in store, for the bridge to insert a job of that kind, in
// route.Queue with route.Priority and route.MaxAttempts, for every such
// event. The Python listener's server.register_handler("my_event",
// my_handler) becomes
//
//	jobs.On(ctx, workers, store, routes.Route{Event: "my_event", Kind: "my_handler"}, myHandler)
//
// Call it at every start of every worker process, before starting the
// River client; on an error, do not start it. Declaring is idempotent and
// safe when several workers start at once: a route that exists is left as
// it is (routes.Store.AddMissing, as `notified-bridge setup --route`
// does), so the queue, priority and max attempts an operator set with
// `routes add` survive restarts, and route's options apply only to a route
// On creates. A worker whose options should win over the operator's calls
// store.Ensure(ctx, route) after On. A route the operator removed is
// declared again at the next start: remove it from the code too.
//
// A kind is registered once per river.Workers: to route a second event to
// the same handler, declare that route with store.AddMissing.
func On(ctx context.Context, workers *river.Workers, store *routes.Store, route routes.Route, fn HandlerFunc) error {
	if store == nil {
		return errors.New("jobs.On: store is nil: pass routes.NewStore(pool, schema)")
	}
	if err := route.Validate(); err != nil {
		return fmt.Errorf("jobs.On: %w", err)
	}
	if err := handleFunc("jobs.On", workers, route.Kind, fn); err != nil {
		return err
	}
	_, err := store.AddMissing(ctx, route) // its errors name the route
	return err
}
