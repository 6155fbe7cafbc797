package bridge_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/notified/notified/bridge"
	"github.com/notified/notified/internal/ident"
	"github.com/notified/notified/internal/testdb"
	"github.com/notified/notified/jobs"
	"github.com/notified/notified/migrations"
	"github.com/notified/notified/publish"
	"github.com/notified/notified/routes"
)

// The Python listener's README example, in one Go program: the bridge and a
// River worker, configured from the listener's environment variables, with
// my_handler run for every my_event. Python's
//
//	server = Server(NotifiedConfig(events_table="my_events", id_field="pk", channel_select_timeout=10))
//	server.register_handler("my_event", my_handler)
//
// becomes ConfigFromEnv and jobs.On; the handler's result is recorded as the
// job's output. In production the bridge and the workers usually run apart
// (notified-bridge run, and worker processes), and migrations.Migrate or
// `notified-bridge migrate` has prepared the database.
func Example_embedded() {
	pool, cleanup := exampleDatabase() // notified's tables and my_events (pk, name, data)
	defer cleanup()
	ctx := context.Background()

	// The Python listener's variables, and NOTIFIED_CHANNEL.
	os.Setenv("NOTIFIED_EVENTS_TABLE_NAME", "my_events")
	os.Setenv("NOTIFIED_ID_FIELD_NAME", "pk")
	os.Setenv("NOTIFIED_CHANNEL_SELECT_TIMEOUT", "10")
	os.Setenv("NOTIFIED_CHANNEL", "events_channel")
	os.Setenv("NOTIFIED_NO_CAPTURE_TRIGGER", "true") // producers announce with publish, as with NotifyClient

	cfg, err := bridge.ConfigFromEnv()
	if err != nil {
		log.Fatal(err)
	}

	// The worker: my_handler runs for every my_event.
	myHandler := func(ctx context.Context, ev jobs.Event) (jobs.Result, error) {
		return jobs.Success(ev.Data), nil
	}
	workers := river.NewWorkers()
	err = jobs.On(ctx, workers, routes.NewStore(pool, cfg.Schema), routes.Route{Event: "my_event", Kind: "my_handler"}, myHandler)
	if err != nil {
		log.Fatal(err)
	}
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{Schema: cfg.Schema, Workers: workers,
		Queues: map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 10}}})
	if err != nil {
		log.Fatal(err)
	}
	completed, _ := client.Subscribe(river.EventKindJobCompleted)
	if err := client.Start(ctx); err != nil {
		log.Fatal(err)
	}

	// The bridge, until stopBridge is called.
	b, err := bridge.New(ctx, pool, cfg)
	if err != nil {
		log.Fatal(err)
	}
	bridgeCtx, stopBridge := context.WithCancel(ctx)
	defer stopBridge()
	bridgeDone := make(chan error, 1)
	go func() { bridgeDone <- b.Run(bridgeCtx) }()

	// A producer: the row, and its id announced, in one transaction.
	pub, err := publish.New(cfg.Schema, cfg.Channel)
	if err != nil {
		log.Fatal(err)
	}
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO my_events (pk, name, data) VALUES (42, 'my_event', '{"greeting": "hello"}')`)
		if err != nil {
			return err
		}
		return pub.Notify(ctx, tx, "42")
	})
	if err != nil {
		log.Fatal(err)
	}

	select {
	case ev := <-completed:
		fmt.Printf("%s %s: %s\n", ev.Job.Kind, ev.Job.State, ev.Job.Output())
	case <-time.After(time.Minute):
		fmt.Println("event 42 was not handled within a minute")
	}

	// Shut down: the bridge finishes its batch, the client its jobs.
	stopBridge()
	if err := <-bridgeDone; err != nil {
		log.Fatal(err)
	}
	if err := client.Stop(ctx); err != nil {
		log.Fatal(err)
	}
	// Output:
	// my_handler completed: {"pk": 42, "data": {"greeting": "hello"}, "name": "my_event"}
}

// exampleDatabase returns a pool to the test database whose search_path is
// a schema of the example's own, migrated, with the table my_events, and a
// function that drops it all and unsets the variables the example set.
func exampleDatabase() (*pgxpool.Pool, func()) {
	ctx := context.Background()
	cfg, err := pgxpool.ParseConfig(testdb.URL())
	if err != nil {
		log.Fatal(err)
	}
	schema := ident.RandomName("example_embedded_")
	admin, err := pgx.ConnectConfig(ctx, cfg.ConnConfig)
	if err != nil {
		log.Fatal(err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize()); err != nil {
		log.Fatal(err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = pgx.Identifier{schema}.Sanitize()
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		log.Fatal(err)
	}
	if _, err := migrations.Migrate(ctx, pool, schema); err != nil {
		log.Fatal(err)
	}
	if _, err := pool.Exec(ctx, "CREATE TABLE my_events (pk bigint PRIMARY KEY, name text NOT NULL, data jsonb)"); err != nil {
		log.Fatal(err)
	}
	return pool, func() {
		pool.Close()
		for _, name := range bridge.EnvVars() {
			os.Unsetenv(name)
		}
		admin, err := pgx.ConnectConfig(ctx, cfg.ConnConfig)
		if err != nil {
			log.Fatal(err)
		}
		defer admin.Close(ctx)
		if _, err := admin.Exec(ctx, "DROP SCHEMA "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			log.Fatal(err)
		}
	}
}
