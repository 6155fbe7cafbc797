package jobs_test

import (
	"context"
	"fmt"
	"log"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/notified/notified/jobs"
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
