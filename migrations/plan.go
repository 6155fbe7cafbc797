package migrations

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"

	"github.com/notified/notified/internal/dbtx"
)

// Line names one of the two lines of migrations a schema holds: River's,
// numbered by River, and notified's own, numbered by the files here.
type Line string

// The lines of migrations.
const (
	LineRiver    Line = "river"
	LineNotified Line = "notified"
)

// Step is one migration of a line, with its SQL in the direction taken:
// the up SQL of a migration to apply, the down SQL of one to revert.
type Step struct {
	Line    Line   `json:"line"`
	Version int    `json:"version"`
	Name    string `json:"name"`
	SQL     string `json:"sql"`
}

// Plan is what Migrate would do to a schema, found without changing
// anything.
type Plan struct {
	// Schema is the schema, as resolved in the database.
	Schema string `json:"schema"`
	// CreateSchema is true when the schema does not exist yet.
	CreateSchema bool `json:"create_schema"`
	// Steps are the migrations to apply, River's then notified's, in the
	// order Migrate applies them.
	Steps []Step `json:"steps"`
}

// Versions returns the versions of line that p applies, in order.
func (p *Plan) Versions(line Line) []int { return versions(p.Steps, line) }

// versions returns the versions of line among steps, in their order.
func versions(steps []Step, line Line) []int {
	out := []int{}
	for _, s := range steps {
		if s.Line == line {
			out = append(out, s.Version)
		}
	}
	return out
}

// PlanMigrate returns what Migrate would apply to schema, changing nothing:
// River's pending migrations as River's migrator finds them in a dry run,
// and notified's above the version applied.
func PlanMigrate(ctx context.Context, pool *pgxpool.Pool, schema string) (*Plan, error) {
	if err := ValidateSchema(schema); err != nil {
		return nil, err
	}
	resolved, err := ResolveSchema(ctx, pool, schema)
	if err != nil {
		return nil, err
	}
	var exists bool
	if err := pool.QueryRow(ctx, schemaExistsSQL, resolved).Scan(&exists); err != nil {
		return nil, fmt.Errorf("look for schema %s: %w", resolved, err)
	}
	p := &Plan{Schema: resolved, CreateSchema: !exists, Steps: []Step{}}
	migrator, err := rivermigrate.New(riverpgxv5.New(pool), &rivermigrate.Config{Schema: resolved})
	if err != nil {
		return nil, fmt.Errorf("river migrator: %w", err)
	}
	riverRes, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, &rivermigrate.MigrateOpts{DryRun: true})
	if err != nil {
		return nil, fmt.Errorf("find River's pending migrations in schema %s: %w", resolved, err)
	}
	for _, v := range riverRes.Versions {
		p.Steps = append(p.Steps, Step{Line: LineRiver, Version: v.Version, Name: v.Name, SQL: v.SQL})
	}
	current := 0
	if exists {
		if current, err = Current(ctx, pool, resolved); err != nil {
			return nil, err
		}
	}
	all, err := All()
	if err != nil {
		return nil, err
	}
	for _, m := range all {
		if m.Version > current {
			p.Steps = append(p.Steps, Step{Line: LineNotified, Version: m.Version, Name: m.Name, SQL: m.Up})
		}
	}
	return p, nil
}

// Script returns the SQL that applies p, for those who apply migrations
// with tools of their own: the schema's creation, River's migrations and
// the record River keeps of them, then notified's in one transaction with
// the search_path set to the schema (their files use unqualified names) and
// the record notified keeps of them. After it, Migrate finds nothing to do.
func (p *Plan) Script() string {
	schema := pgx.Identifier{p.Schema}.Sanitize()
	var b strings.Builder
	if len(p.Steps) == 0 && !p.CreateSchema {
		fmt.Fprintf(&b, "-- schema %s is up to date: no migration to apply\n", schema)
		return b.String()
	}
	fmt.Fprintf(&b, "-- the migrations schema %s lacks, in the order to apply them\n", schema)
	if p.CreateSchema {
		fmt.Fprintf(&b, "\nCREATE SCHEMA IF NOT EXISTS %s;\n", schema)
	}
	river := p.Versions(LineRiver)
	for _, s := range p.Steps {
		if s.Line == LineRiver {
			// Each in a transaction of its own, as River runs them: some
			// use what an earlier one added to an enum, which needs a
			// commit first.
			fmt.Fprintf(&b, "\n-- River migration %03d (%s)\nBEGIN;\n%s\nCOMMIT;\n", s.Version, s.Name, strings.TrimSpace(s.SQL))
		}
	}
	if len(river) > 0 {
		// River's migration table has had its final shape, (line,
		// version), since River's migration 5, which every plan reaches.
		rows := make([]string, len(river))
		for i, v := range river {
			rows[i] = "('main', " + strconv.Itoa(v) + ")"
		}
		fmt.Fprintf(&b, "\n-- River's record of the migrations above\nINSERT INTO %s.river_migration (line, version) VALUES %s;\n",
			schema, strings.Join(rows, ", "))
	}
	if notified := p.Versions(LineNotified); len(notified) > 0 {
		fmt.Fprintf(&b, "\n-- notified's migrations %v, in one transaction\nBEGIN;\nSET LOCAL search_path TO %s, pg_temp;\n%s;\n",
			notified, schema, dbtx.InSchema(p.Schema, createMigrationTableSQL))
		for _, s := range p.Steps {
			if s.Line != LineNotified {
				continue
			}
			fmt.Fprintf(&b, "\n-- notified migration %03d (%s)\n%s\nINSERT INTO %s.notified_migration (version, name) VALUES (%d, '%s');\n",
				s.Version, s.Name, strings.TrimSpace(s.SQL), schema, s.Version, s.Name)
		}
		b.WriteString("COMMIT;\n")
	}
	return b.String()
}

// DownResult says what Down reverted, or would revert.
type DownResult struct {
	// Schema is the schema, as resolved in the database.
	Schema string `json:"schema"`
	// Line is the line reverted.
	Line Line `json:"line"`
	// Target is the version the line is left at; 0 is none.
	Target int `json:"target"`
	// Reverted are the migrations reverted, newest first, with their down
	// SQL.
	Reverted []Step `json:"reverted"`
	// DryRun is true when nothing was changed.
	DryRun bool `json:"dry_run"`
}

// Versions returns the versions reverted, newest first.
func (r *DownResult) Versions() []int { return versions(r.Reverted, r.Line) }

// ErrNotifiedUsesRiver is returned by Down for River's line while
// notified's migrations are applied: notified's tables, views and trigger
// are built on River's job table.
var ErrNotifiedUsesRiver = errors.New("notified's migrations use River's tables")

// Down reverts the migrations of line above target in schema (target 0
// reverts them all), newest first, dropping their tables and every row in
// them: notified's with their .down.sql files in one transaction, River's
// with River's migrator. It refuses River's line while notified's
// migrations are applied (ErrNotifiedUsesRiver). With dryRun it only
// returns what it would revert. It takes the migrations' advisory lock, as
// Migrate does.
func Down(ctx context.Context, pool *pgxpool.Pool, schema string, line Line, target int, dryRun bool) (*DownResult, error) {
	if err := ValidateSchema(schema); err != nil {
		return nil, err
	}
	if target < 0 {
		return nil, fmt.Errorf("target version %d is negative: give 0 to revert every migration", target)
	}
	resolved, err := ResolveSchema(ctx, pool, schema)
	if err != nil {
		return nil, err
	}
	res := &DownResult{Schema: resolved, Line: line, Target: target, Reverted: []Step{}, DryRun: dryRun}
	switch line {
	case LineNotified:
		err = downNotified(ctx, pool, res)
	case LineRiver:
		err = downRiver(ctx, pool, res)
	default:
		return nil, fmt.Errorf("migration line %q is not %s or %s", line, LineNotified, LineRiver)
	}
	if err != nil {
		return nil, err
	}
	return res, nil
}

// downNotified reverts notified's migrations above res.Target.
func downNotified(ctx context.Context, pool *pgxpool.Pool, res *DownResult) error {
	all, err := All()
	if err != nil {
		return err
	}
	if res.Target > 0 && !slices.ContainsFunc(all, func(m Migration) bool { return m.Version == res.Target }) {
		return fmt.Errorf("notified has no migration %d: its versions are %v", res.Target, migrationVersions(all))
	}
	toRevert := func(current int) []Step {
		var steps []Step
		for i := len(all) - 1; i >= 0; i-- {
			if m := all[i]; m.Version <= current && m.Version > res.Target {
				steps = append(steps, Step{Line: LineNotified, Version: m.Version, Name: m.Name, SQL: m.Down})
			}
		}
		return steps
	}
	if res.DryRun {
		current, err := Current(ctx, pool, res.Schema)
		if err != nil {
			return err
		}
		res.Reverted = append(res.Reverted, toRevert(current)...)
		return nil
	}
	return withLock(ctx, pool, res.Schema, func(conn *pgxpool.Conn) error {
		_, err := inTx(ctx, conn, res.Schema, func(tx pgx.Tx, current int) ([]int, error) {
			for _, s := range toRevert(current) {
				if _, err := tx.Exec(ctx, s.SQL); err != nil {
					return nil, fmt.Errorf("revert migration %03d_%s: %w", s.Version, s.Name, err)
				}
				if _, err := tx.Exec(ctx, dbtx.InSchema(res.Schema, unrecordMigrationSQL), s.Version); err != nil {
					return nil, fmt.Errorf("unrecord migration %03d_%s: %w", s.Version, s.Name, err)
				}
				res.Reverted = append(res.Reverted, s)
			}
			return nil, nil
		})
		if err != nil {
			res.Reverted = res.Reverted[:0] // rolled back
		}
		return err
	})
}

// downRiver reverts River's migrations above res.Target.
func downRiver(ctx context.Context, pool *pgxpool.Pool, res *DownResult) error {
	migrator, err := rivermigrate.New(riverpgxv5.New(pool), &rivermigrate.Config{Schema: res.Schema})
	if err != nil {
		return fmt.Errorf("river migrator: %w", err)
	}
	if res.Target > 0 {
		if _, err := migrator.GetVersion(res.Target); err != nil {
			return fmt.Errorf("River has no migration %d: its versions are 1 to %d", res.Target, len(migrator.AllVersions()))
		}
	}
	run := func() error {
		current, err := Current(ctx, pool, res.Schema)
		if err != nil {
			return err
		}
		if current > 0 {
			return fmt.Errorf("%w (version %d of notified's is applied in schema %s): revert notified's first", ErrNotifiedUsesRiver, current, res.Schema)
		}
		existing, err := migrator.ExistingVersions(ctx)
		if err != nil {
			return fmt.Errorf("read River's applied migrations in schema %s: %w", res.Schema, err)
		}
		if len(existing) == 0 || existing[len(existing)-1].Version <= res.Target {
			return nil
		}
		// River reverts down to TargetVersion, which must be applied; -1
		// reverts every migration.
		target := res.Target
		if target == 0 {
			target = -1
		}
		riverRes, err := migrator.Migrate(ctx, rivermigrate.DirectionDown, &rivermigrate.MigrateOpts{TargetVersion: target, DryRun: res.DryRun})
		if err != nil {
			return fmt.Errorf("revert River's migrations in schema %s: %w", res.Schema, err)
		}
		for _, v := range riverRes.Versions {
			res.Reverted = append(res.Reverted, Step{Line: LineRiver, Version: v.Version, Name: v.Name, SQL: v.SQL})
		}
		return nil
	}
	if res.DryRun {
		return run()
	}
	return withLock(ctx, pool, res.Schema, func(*pgxpool.Conn) error { return run() })
}

// Script returns the SQL that performs r, for those who apply migrations
// with tools of their own: each migration's down SQL, newest first, and the
// removal of the record of it (River's table goes with River's first
// migration).
func (r *DownResult) Script() string {
	schema := pgx.Identifier{r.Schema}.Sanitize()
	var b strings.Builder
	if len(r.Reverted) == 0 {
		fmt.Fprintf(&b, "-- schema %s has no %s migration above %d: nothing to revert\n", schema, r.Line, r.Target)
		return b.String()
	}
	fmt.Fprintf(&b, "-- reverts %s's migrations %v in schema %s, newest first: drops their tables and every row in them\n",
		r.Line, r.Versions(), schema)
	if r.Line == LineNotified {
		fmt.Fprintf(&b, "BEGIN;\nSET LOCAL search_path TO %s, pg_temp;\n", schema)
	}
	for _, s := range r.Reverted {
		fmt.Fprintf(&b, "\n-- %s migration %03d (%s), down\n%s\n", s.Line, s.Version, s.Name, strings.TrimSpace(s.SQL))
		switch {
		case s.Line == LineNotified:
			fmt.Fprintf(&b, "DELETE FROM %s.notified_migration WHERE version = %d;\n", schema, s.Version)
		case s.Version != 1: // River's first migration drops the table
			fmt.Fprintf(&b, "DELETE FROM %s.river_migration WHERE line = 'main' AND version = %d;\n", schema, s.Version)
		}
	}
	if r.Line == LineNotified {
		b.WriteString("COMMIT;\n")
	}
	return b.String()
}

// migrationVersions returns the versions of ms.
func migrationVersions(ms []Migration) []int {
	out := make([]int, len(ms))
	for i, m := range ms {
		out[i] = m.Version
	}
	return out
}
