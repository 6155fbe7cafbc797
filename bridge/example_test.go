package bridge_test

import (
	"context"
	"log"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/notified/notified/bridge"
	"github.com/notified/notified/migrations"
	"github.com/notified/notified/routes"
	"github.com/notified/notified/trigger"
)

// A bridge in a Go program: migrate, install the capture trigger, route an
// event name to a handler kind, then dispatch until interrupted.
func Example() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()

	if _, err := migrations.Migrate(ctx, pool, "notified"); err != nil {
		log.Fatal(err)
	}
	if _, err := trigger.Install(ctx, pool, trigger.Options{Schema: "notified", Table: "public.events"}); err != nil {
		log.Fatal(err)
	}
	if err := routes.NewStore(pool, "notified").Add(ctx, routes.Route{Event: "user_signed_up", Kind: "send_welcome"}); err != nil {
		log.Fatal(err)
	}

	b, err := bridge.New(ctx, pool, bridge.Config{
		Schema:       "notified",
		Table:        "public.events",
		PollInterval: 2 * time.Second,
	})
	if err != nil {
		log.Fatal(err) // e.g. the table or a column does not exist
	}
	if err := b.Run(ctx); err != nil { // returns nil after ctx is done
		log.Fatal(err)
	}
}

// A bridge beside other work in one process, stopped gracefully: when its
// context is done, Run finishes the batches in flight and returns. Every
// event committed meanwhile stays in the outbox for the next bridge.
func ExampleBridge_Run() {
	pool, err := pgxpool.New(context.Background(), os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	b, err := bridge.New(ctx, pool, bridge.Config{Schema: "notified", Table: "public.events"})
	if err != nil {
		log.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()

	// ... the rest of the program runs here, until SIGINT or SIGTERM.
	<-ctx.Done()

	select {
	case err := <-done:
		if err != nil {
			log.Print(err)
		}
	case <-time.After(30 * time.Second):
		log.Print("bridge still finishing a batch after 30s; exiting: its transaction rolls back and the events are dispatched again")
	}
	log.Printf("bridge stopped: %+v", b.Stats())
}
