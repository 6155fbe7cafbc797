package publish_test

import (
	"context"
	"log"
	"os"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/notified/notified/publish"
)

// Announce an event from inside the transaction that creates it, in a table
// without the capture trigger: the bridge sees it exactly when, and only if,
// the transaction commits.
func ExamplePublisher_Notify() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	pub, err := publish.New("notified", "events")
	if err != nil {
		log.Fatal(err)
	}
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		var id string
		if err := tx.QueryRow(ctx, "INSERT INTO legacy_events (name) VALUES ('user_signed_up') RETURNING id::text").Scan(&id); err != nil {
			return err
		}
		return pub.Notify(ctx, tx, id)
	})
	if err != nil {
		log.Fatal(err)
	}
}
