package bench

import (
	"context"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/notified/notified/migrations"
	"github.com/notified/notified/routes"
	"github.com/notified/notified/trigger"
)

// eventName is the name of every event the bench commits.
const eventName = "bench.event"

// scratch is the bench's schema: River's and notified's tables, an events
// table with notified's capture trigger, and the bench's marks.
type scratch struct {
	pool    *pgxpool.Pool
	schema  string
	channel string
	events  string // quoted events table
	table   string // the events table as the bridge's Table option
	marks   string // quoted bench_mark: one row per statement inserting jobs
	jobs    string // quoted bench_job: one row per job inserted (steady mode)
	river   string // quoted river_job
	commit  bool   // track_commit_timestamp is on
}

func (s *scratch) ident(name string) string { return pgx.Identifier{s.schema, name}.Sanitize() }

// createScratch creates the scratch schema and everything in it. It refuses
// a schema that exists.
func createScratch(ctx context.Context, pool *pgxpool.Pool, o Options) (*scratch, error) {
	if err := migrations.ValidateSchema(o.Schema); err != nil {
		return nil, err
	}
	var exists bool
	if err := pool.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", o.Schema).Scan(&exists); err != nil {
		return nil, fmt.Errorf("look for schema %s: %w", o.Schema, err)
	}
	if exists {
		return nil, fmt.Errorf("%w: %s; the bench works only in a schema it creates and drops: name another or drop it", ErrSchemaExists, o.Schema)
	}
	s := &scratch{pool: pool, schema: o.Schema, channel: o.Schema}
	s.events, s.table = s.ident("events"), o.Schema+".events"
	s.marks, s.jobs, s.river = s.ident("bench_mark"), s.ident("bench_job"), s.ident("river_job")
	if _, err := pool.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{o.Schema}.Sanitize()); err != nil {
		return nil, fmt.Errorf("create scratch schema %s: %w", o.Schema, err)
	}
	if err := s.populate(ctx, o); err != nil {
		_ = s.drop(context.WithoutCancel(ctx))
		return nil, err
	}
	return s, nil
}

func (s *scratch) populate(ctx context.Context, o Options) error {
	if _, err := migrations.Migrate(ctx, s.pool, s.schema); err != nil {
		return err
	}
	// created_at is the insert's own clock, not the transaction's start: a
	// bulk transaction's rows are stamped as they are written.
	if _, err := s.pool.Exec(ctx, `CREATE TABLE `+s.events+` (
		id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
		name text NOT NULL,
		data jsonb NOT NULL,
		created_at timestamptz NOT NULL DEFAULT clock_timestamp())`); err != nil {
		return fmt.Errorf("create the bench's events table: %w", err)
	}
	if _, err := trigger.Install(ctx, s.pool, trigger.Options{Schema: s.schema, Table: s.table, Channel: s.channel}); err != nil {
		return err
	}
	store := routes.NewStore(s.pool, s.schema)
	for i := range o.Routes {
		if err := store.Ensure(ctx, routes.Route{Event: eventName, Kind: routeKind(i)}); err != nil {
			return err
		}
	}
	// Marks: the end of each statement that inserts jobs, and of its
	// transaction's id, from the database's clock. One row per statement
	// costs little beside a batch of jobs.
	_, err := s.pool.Exec(ctx, `
		CREATE TABLE `+s.marks+` (xid bigint NOT NULL, at timestamptz NOT NULL);
		CREATE FUNCTION `+s.ident("bench_mark")+`() RETURNS trigger LANGUAGE plpgsql AS $fn$
		BEGIN
			INSERT INTO `+s.marks+` VALUES (pg_current_xact_id()::text::bigint % 4294967296, clock_timestamp());
			RETURN NULL;
		END $fn$;
		CREATE TRIGGER bench_mark AFTER INSERT ON `+s.river+` FOR EACH STATEMENT EXECUTE FUNCTION `+s.ident("bench_mark")+`();
		CREATE TABLE `+s.jobs+` (job_id bigint NOT NULL, at timestamptz NOT NULL);
		CREATE FUNCTION `+s.ident("bench_job")+`() RETURNS trigger LANGUAGE plpgsql AS $fn$
		BEGIN
			INSERT INTO `+s.jobs+` SELECT id, clock_timestamp() FROM inserted;
			RETURN NULL;
		END $fn$`)
	if err != nil {
		return fmt.Errorf("create the bench's marks: %w", err)
	}
	if err := s.pool.QueryRow(ctx, "SELECT current_setting('track_commit_timestamp') = 'on'").Scan(&s.commit); err != nil {
		return fmt.Errorf("read track_commit_timestamp: %w", err)
	}
	return nil
}

// stampEachJob makes every job's insert time recorded, for latencies; a
// per-row cost that only the steady mode's rates can ignore.
func (s *scratch) stampEachJob(ctx context.Context) error {
	_, err := s.pool.Exec(ctx, `CREATE TRIGGER bench_job AFTER INSERT ON `+s.river+
		` REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION `+s.ident("bench_job")+`()`)
	if err != nil {
		return fmt.Errorf("stamp each job's insert: %w", err)
	}
	return nil
}

// reset empties the tables a phase measures, so the next starts from the
// same state.
func (s *scratch) reset(ctx context.Context) error {
	_, err := s.pool.Exec(ctx, "TRUNCATE "+s.river+", "+s.marks+", "+s.jobs+", "+s.ident("notified_job")+", "+
		s.ident("notified_dispatch")+", "+s.ident("notified_outbox")+", "+s.events)
	if err != nil {
		return fmt.Errorf("empty the bench's tables: %w", err)
	}
	return nil
}

func (s *scratch) drop(ctx context.Context) error {
	if _, err := s.pool.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{s.schema}.Sanitize()+" CASCADE"); err != nil {
		return fmt.Errorf("drop scratch schema %s: %w", s.schema, err)
	}
	return nil
}

// routeKind is the job kind of the i-th route.
func routeKind(i int) string { return "bench_route_" + strconv.Itoa(i) }
