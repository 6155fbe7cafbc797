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
	table   string // the events table as the bridge's Table option
	commit  bool   // track_commit_timestamp is on
}

func (s *scratch) ident(name string) string { return pgx.Identifier{s.schema, name}.Sanitize() }

// sql returns q (one of sql.go's statements) for the scratch schema and the
// server's clock (see inScratch).
func (s *scratch) sql(q string) string { return inScratch(s.schema, s.commit, q) }

// createScratch creates the scratch schema and everything in it. It refuses
// a schema that exists.
func createScratch(ctx context.Context, pool *pgxpool.Pool, o Options) (*scratch, error) {
	if err := migrations.ValidateSchema(o.Schema); err != nil {
		return nil, err
	}
	var exists bool
	if err := pool.QueryRow(ctx, schemaExistsSQL, o.Schema).Scan(&exists); err != nil {
		return nil, fmt.Errorf("look for schema %s: %w", o.Schema, err)
	}
	if exists {
		return nil, fmt.Errorf("%w: %s; the bench works only in a schema it creates and drops: name another or drop it", ErrSchemaExists, o.Schema)
	}
	s := &scratch{pool: pool, schema: o.Schema, channel: o.Schema}
	s.table = o.Schema + ".events"
	if _, err := pool.Exec(ctx, s.sql(createSchemaSQL)); err != nil {
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
	if _, err := s.pool.Exec(ctx, s.sql(createEventsSQL)); err != nil {
		return fmt.Errorf("create the bench's events table: %w", err)
	}
	if _, err := trigger.Install(ctx, s.pool, trigger.Options{Schema: s.schema, Table: s.table, Channel: s.channel}); err != nil {
		return err
	}
	store := routes.NewStore(s.pool, s.schema)
	for i := range o.Routes {
		r := routes.Route{Event: eventName, Kind: routeKind(i)}
		if o.Filters {
			r.Where = routeFilter(i)
		}
		if err := store.Ensure(ctx, r); err != nil {
			return err
		}
	}
	// Marks: the end of each statement that inserts jobs, and of its
	// transaction's id, from the database's clock. One row per statement
	// costs little beside a batch of jobs.
	_, err := s.pool.Exec(ctx, s.sql(createMarksSQL))
	if err != nil {
		return fmt.Errorf("create the bench's marks: %w", err)
	}
	if err := s.pool.QueryRow(ctx, commitClockSQL).Scan(&s.commit); err != nil {
		return fmt.Errorf("read track_commit_timestamp: %w", err)
	}
	return nil
}

// stampEachJob makes every job's insert time recorded, for latencies; a
// per-row cost that only the steady mode's rates can ignore.
func (s *scratch) stampEachJob(ctx context.Context) error {
	_, err := s.pool.Exec(ctx, s.sql(stampEachJobSQL))
	if err != nil {
		return fmt.Errorf("stamp each job's insert: %w", err)
	}
	return nil
}

// reset empties the tables a phase measures, so the next starts from the
// same state.
func (s *scratch) reset(ctx context.Context) error {
	_, err := s.pool.Exec(ctx, s.sql(resetSQL))
	if err != nil {
		return fmt.Errorf("empty the bench's tables: %w", err)
	}
	return nil
}

func (s *scratch) drop(ctx context.Context) error {
	if _, err := s.pool.Exec(ctx, s.sql(dropSchemaSQL)); err != nil {
		return fmt.Errorf("drop scratch schema %s: %w", s.schema, err)
	}
	return nil
}

// routeFilters are filters every event of the bench matches (see
// eventData), each of a common shape: a comparison of a number, of a
// string, a conjunction with a regular expression, a strict path.
var routeFilters = []string{
	`$.data.amount > 10`,
	`$.data.plan == "pro"`,
	`$.data.user_id >= 0 && $.data.email like_regex "@example\.com$"`,
	`strict $.data.amount < 1000`,
}

// routeFilter is the filter of the i-th route, with Options.Filters.
func routeFilter(i int) string { return routeFilters[i%len(routeFilters)] }

// routeKind is the job kind of the i-th route.
func routeKind(i int) string { return "bench_route_" + strconv.Itoa(i) }
