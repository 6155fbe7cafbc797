package bridge_test

import (
	"context"
	"log"
	"os"
	"os/signal"
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
