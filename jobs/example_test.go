package jobs_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"os"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"

	"github.com/notified/notified/jobs"
	"github.com/notified/notified/routes"
)

// SendWelcome is a handler kind: jobs of kind "send_welcome" run its handler.
type SendWelcome struct{}

// Kind names the handler kind, as routes refer to it.
func (SendWelcome) Kind() string { return "send_welcome" }

// ExampleHandle registers a handler for the send_welcome kind and starts a
// River client that works the jobs notified-bridge inserts for it.
func ExampleHandle() {
	ctx := context.Background()

	workers := river.NewWorkers()
	err := jobs.Handle[SendWelcome](workers, func(ctx context.Context, ev jobs.Event) (jobs.Result, error) {
		var user struct {
			Email string `json:"email"`
		}
		if err := ev.Decode(&user); err != nil {
			// The row will not decode better next time: do not retry.
			return jobs.Result{}, jobs.Permanent(err)
		}
		if user.Email == "" {
			// Cancel the job, recording why, without retrying it.
			return jobs.Failure(map[string]string{"reason": "no email"}), nil
		}
		// A returned error would be retried with River's backoff.
		fmt.Printf("welcome %s (event %s on %s)\n", user.Email, ev.ID, ev.Channel)
		return jobs.Success(map[string]string{"sent_to": user.Email}), nil
	})
	if err != nil {
		log.Fatal(err)
	}

	pool, err := pgxpool.New(ctx, "postgres://localhost:5432/app")
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()

	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		Schema:  "notified", // the schema notified-bridge migrate prepared
		Queues:  map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 10}},
		Workers: workers,
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := client.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer func() { _ = client.Stop(context.Background()) }()

	// ... run until asked to stop.
}

// ChargeOrder is a handler kind whose handler shows the three outcomes of a
// job: retried, cancelled, completed with an output.
type ChargeOrder struct{}

// Kind names the handler kind.
func (ChargeOrder) Kind() string { return "charge_order" }

var (
	errDeclined    = errors.New("card declined")
	errUnavailable = errors.New("payment service unavailable")
)

// charge stands for a payment service's client.
func charge(_ context.Context, card string, cents int) (string, error) {
	switch {
	case strings.HasPrefix(card, "0000"):
		return "", fmt.Errorf("card %s: %w", card, errDeclined)
	case strings.HasPrefix(card, "5555"):
		return "", fmt.Errorf("charge card %s: %w", card, errUnavailable)
	}
	return fmt.Sprintf("r-%s-%d", card, cents), nil
}

// ExampleHandle_results sorts what can go wrong into what River should retry
// and what it should not. The handler is called directly here, as a unit
// test of a handler would; under River the same results complete, retry or
// cancel the job.
func ExampleHandle_results() {
	handler := func(ctx context.Context, ev jobs.Event) (jobs.Result, error) {
		var order struct {
			Card  string `json:"card"`
			Cents int    `json:"cents"`
		}
		if err := ev.Decode(&order); err != nil {
			return jobs.Result{}, jobs.Permanent(err) // the row will not decode better
		}
		receipt, err := charge(ctx, order.Card, order.Cents)
		switch {
		case errors.Is(err, errDeclined):
			return jobs.Result{}, jobs.Permanent(err) // cancelled at once, not retried
		case err != nil:
			return jobs.Result{}, err // retried with backoff, up to the route's max attempts
		}
		// Completed; the payload is recorded as the job's output.
		return jobs.Success(map[string]string{"receipt": receipt}), nil
	}

	workers := river.NewWorkers()
	if err := jobs.Handle[ChargeOrder](workers, handler); err != nil {
		log.Fatal(err)
	}

	for i, row := range []string{
		`{"card": "4242", "cents": 990}`,
		`{"card": "5555", "cents": 990}`,
		`{"card": "0000", "cents": 990}`,
	} {
		ev := jobs.Event{ID: fmt.Sprint(i + 1), Name: "order_placed", Channel: "events", Data: json.RawMessage(row)}
		res, err := handler(context.Background(), ev)
		var cancel *rivertype.JobCancelError
		switch {
		case errors.As(err, &cancel):
			fmt.Printf("event %s: cancelled: %v\n", ev.ID, cancel.Unwrap())
		case err != nil:
			fmt.Printf("event %s: retried: %v\n", ev.ID, err)
		default:
			out, _ := json.Marshal(res.Payload)
			fmt.Printf("event %s: completed, output %s\n", ev.ID, out)
		}
	}
	// Output:
	// event 1: completed, output {"receipt":"r-4242-990"}
	// event 2: retried: charge card 5555: payment service unavailable
	// event 3: cancelled: card 0000: card declined
}

// ExampleOn is a worker's start-up: each handler registered and its route
// declared in one call, at every start. Routes an operator changed keep
// their options. Example (Embedded) of package bridge runs it with a bridge.
func ExampleOn() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, "postgres://localhost:5432/app")
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	store := routes.NewStore(pool, "notified")

	workers := river.NewWorkers()
	err = jobs.On(ctx, workers, store, routes.Route{Event: "my_event", Kind: "my_handler"},
		func(ctx context.Context, ev jobs.Event) (jobs.Result, error) {
			return jobs.Success(ev.Data), nil
		})
	if err != nil {
		log.Fatal(err)
	}
	err = jobs.On(ctx, workers, store, routes.Route{Event: "order_placed", Kind: "charge_order", Queue: "payments", MaxAttempts: 5},
		func(ctx context.Context, ev jobs.Event) (jobs.Result, error) {
			return jobs.Success(nil), nil
		})
	if err != nil {
		log.Fatal(err)
	}

	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		Schema: "notified",
		Queues: map[string]river.QueueConfig{
			river.QueueDefault: {MaxWorkers: 10},
			"payments":         {MaxWorkers: 2},
		},
		Workers: workers,
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := client.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer func() { _ = client.Stop(context.Background()) }()

	// ... run until asked to stop.
}

// ExampleHandleFunc registers handlers for kinds named in configuration,
// with no Go type per kind.
func ExampleHandleFunc() {
	workers := river.NewWorkers()
	for _, kind := range strings.Split(os.Getenv("AUDITED_KINDS"), ",") {
		err := jobs.HandleFunc(workers, kind, func(ctx context.Context, ev jobs.Event) (jobs.Result, error) {
			return jobs.Success(map[string]string{"audited": ev.Job.Kind + " " + ev.ID}), nil
		})
		if err != nil {
			log.Fatal(err) // an empty or repeated kind
		}
	}
}

// ExampleCompleteTx marks an order fulfilled and completes the job in one
// transaction: neither happens without the other. For an ordered route,
// the order's next job is released at the commit.
func ExampleCompleteTx() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, "postgres://localhost:5432/app")
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()

	workers := river.NewWorkers()
	err = jobs.HandleFunc(workers, "fulfil", func(ctx context.Context, ev jobs.Event) (jobs.Result, error) {
		var order struct {
			ID int64 `json:"order_id"`
		}
		if err := ev.Decode(&order); err != nil {
			return jobs.Result{}, jobs.Permanent(err)
		}
		tx, err := pool.Begin(ctx)
		if err != nil {
			return jobs.Result{}, err
		}
		defer func() { _ = tx.Rollback(ctx) }()
		if _, err := tx.Exec(ctx, "UPDATE orders SET state = 'fulfilled' WHERE id = $1", order.ID); err != nil {
			return jobs.Result{}, err
		}
		if err := jobs.CompleteTx(ctx, tx, ev, map[string]int64{"fulfilled": order.ID}); err != nil {
			return jobs.Result{}, err
		}
		if err := tx.Commit(ctx); err != nil {
			return jobs.Result{}, err
		}
		return jobs.Success(nil), nil
	})
	if err != nil {
		log.Fatal(err)
	}
	// ... start a River client with workers, as in ExampleOn.
}
