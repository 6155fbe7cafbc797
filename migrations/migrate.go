// Package migrations holds notified's own SQL and applies it, together with
// River's migrations, to a database.
//
// Every migration is a pair of files, NNN_name.up.sql and NNN_name.down.sql,
// embedded in the binary. The files use unqualified names: they run with the
// search_path set to the target schema, so one set of files serves any schema.
package migrations

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"

	"github.com/notified/notified/internal/dbtx"
	"github.com/notified/notified/internal/ident"
)

//go:embed *.sql
var files embed.FS

// Migration is one version of notified's schema.
type Migration struct {
	Version int
	Name    string
	Up      string
	Down    string
}

// Result says what Migrate did.
type Result struct {
	// Schema is the schema migrated, as resolved in the database.
	Schema string `json:"schema"`
	// RiverVersions are River's migration versions applied by this call.
	RiverVersions []int `json:"river_versions"`
	// Versions are notified's migration versions applied by this call.
	Versions []int `json:"versions"`
}

var fileRE = regexp.MustCompile(`^(\d{3})_([a-z0-9_]+)\.(up|down)\.sql$`)

// All returns notified's migrations in version order.
func All() ([]Migration, error) {
	entries, err := fs.ReadDir(files, ".")
	if err != nil {
		return nil, fmt.Errorf("read embedded migrations: %w", err)
	}
	byVersion := map[int]*Migration{}
	for _, e := range entries {
		m := fileRE.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("embedded migration %q: name is not NNN_name.up.sql or NNN_name.down.sql", e.Name())
		}
		version, _ := strconv.Atoi(m[1])
		body, err := fs.ReadFile(files, e.Name())
		if err != nil {
			return nil, fmt.Errorf("read embedded migration %s: %w", e.Name(), err)
		}
		mig := byVersion[version]
		if mig == nil {
			mig = &Migration{Version: version, Name: m[2]}
			byVersion[version] = mig
		}
		if m[3] == "up" {
			mig.Up = string(body)
		} else {
			mig.Down = string(body)
		}
	}
	out := make([]Migration, 0, len(byVersion))
	for _, m := range byVersion {
		if m.Up == "" || m.Down == "" {
			return nil, fmt.Errorf("embedded migration %03d_%s lacks its up or down file", m.Version, m.Name)
		}
		out = append(out, *m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, nil
}

// SchemaRE is what a schema name may look like: River requires letters,
// digits and underscores, and at most 46 characters.
var SchemaRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,45}$`)

// ErrSystemSchema is wrapped by the errors that refuse one of Postgres' own
// schemas (see IsSystemSchema).
var ErrSystemSchema = ident.ErrSystemSchema

// IsSystemSchema reports whether schema is one Postgres keeps for itself:
// information_schema, or a name starting with pg_.
func IsSystemSchema(schema string) bool { return ident.IsSystemSchema(schema) }

// ValidateSchema reports whether schema can be used; the empty string means
// the connection's current schema. It refuses the system schemas (see
// IsSystemSchema), where notified's and River's tables have no place.
func ValidateSchema(schema string) error { return ident.ValidateSchema(schema) }

// ResolveSchema returns schema, or the connection's current schema when schema
// is empty; db is a pool, a connection or a transaction.
func ResolveSchema(ctx context.Context, db dbtx.DBTX, schema string) (string, error) {
	if schema != "" {
		return schema, nil
	}
	var current *string
	if err := db.QueryRow(ctx, currentSchemaSQL).Scan(&current); err != nil {
		return "", fmt.Errorf("resolve current schema: %w", err)
	}
	if current == nil {
		return "", errors.New("resolve current schema: the search_path names no existing schema; set the schema")
	}
	if IsSystemSchema(*current) {
		return "", fmt.Errorf("resolve current schema: the connection's current schema (the first existing one of its search_path) is %q, a %w of Postgres: set Schema, or put a schema of your own first in the search_path", *current, ErrSystemSchema)
	}
	return *current, nil
}

// Migrate creates schema if needed and applies River's migrations and then
// notified's own, up to the newest. It is idempotent and safe to run from
// several processes at once: they take turns on an advisory lock.
func Migrate(ctx context.Context, pool *pgxpool.Pool, schema string) (*Result, error) {
	if err := ValidateSchema(schema); err != nil {
		return nil, err
	}
	resolved, err := ResolveSchema(ctx, pool, schema)
	if err != nil {
		return nil, err
	}
	res := &Result{Schema: resolved, RiverVersions: []int{}, Versions: []int{}}
	err = withLock(ctx, pool, resolved, func(conn *pgxpool.Conn) error {
		// CREATE SCHEMA IF NOT EXISTS needs CREATE on the database even
		// when the schema exists: ask first, so a role that only owns the
		// schema can migrate it.
		var exists bool
		if err := conn.QueryRow(ctx, schemaExistsSQL, resolved).Scan(&exists); err != nil {
			return fmt.Errorf("look for schema %s: %w", resolved, err)
		}
		if !exists {
			if _, err := conn.Exec(ctx, dbtx.InSchema(resolved, createSchemaSQL)); err != nil {
				return fmt.Errorf("create schema %s: %w", resolved, err)
			}
		}
		migrator, err := rivermigrate.New(riverpgxv5.New(pool), &rivermigrate.Config{Schema: resolved})
		if err != nil {
			return fmt.Errorf("river migrator: %w", err)
		}
		riverRes, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil)
		if err != nil {
			return fmt.Errorf("apply River's migrations to schema %s: %w", resolved, err)
		}
		for _, v := range riverRes.Versions {
			res.RiverVersions = append(res.RiverVersions, v.Version)
		}
		all, err := All()
		if err != nil {
			return err
		}
		applied, err := inTx(ctx, conn, resolved, func(tx pgx.Tx, current int) ([]int, error) {
			var done []int
			for _, m := range all {
				if m.Version <= current {
					continue
				}
				if _, err := tx.Exec(ctx, m.Up); err != nil {
					return nil, fmt.Errorf("apply migration %03d_%s: %w", m.Version, m.Name, err)
				}
				if _, err := tx.Exec(ctx, dbtx.InSchema(resolved, recordMigrationSQL), m.Version, m.Name); err != nil {
					return nil, fmt.Errorf("record migration %03d_%s: %w", m.Version, m.Name, err)
				}
				done = append(done, m.Version)
			}
			return done, nil
		})
		res.Versions = append(res.Versions, applied...)
		return err
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// down reverts notified's migrations above targetVersion (0 reverts all of
// them) and returns their versions, newest first; see Down.
func down(ctx context.Context, pool *pgxpool.Pool, schema string, targetVersion int) ([]int, error) {
	res, err := Down(ctx, pool, schema, LineNotified, targetVersion, false)
	if err != nil {
		return nil, err
	}
	return res.Versions(), nil
}

// withLock runs fn holding a session advisory lock for schema's migrations
// on a dedicated connection, so that concurrent migrators (River's part
// included, which takes no lock of its own) take turns.
func withLock(ctx context.Context, pool *pgxpool.Pool, schema string, fn func(conn *pgxpool.Conn) error) error {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("migrate schema %s: acquire connection: %w", schema, err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, lockSQL, schema); err != nil {
		return fmt.Errorf("migrate schema %s: lock: %w", schema, err)
	}
	defer func() {
		if _, err := conn.Exec(context.WithoutCancel(ctx), unlockSQL, schema); err != nil {
			// A connection that cannot unlock must not go back to the pool
			// holding the lock.
			_ = conn.Conn().Close(context.WithoutCancel(ctx))
		}
	}()
	return fn(conn)
}

// inTx runs fn in one transaction on conn with the search_path set to
// schema, after creating notified_migration if needed, with the newest
// applied version of notified's migrations.
func inTx(ctx context.Context, conn *pgxpool.Conn, schema string, fn func(tx pgx.Tx, current int) ([]int, error)) ([]int, error) {
	var out []int
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		// pg_temp last: functions created with SET search_path FROM CURRENT
		// then never resolve names to a caller's temporary tables.
		if _, err := tx.Exec(ctx, setSearchPathSQL, pgx.Identifier{schema}.Sanitize()+", pg_temp"); err != nil {
			return fmt.Errorf("set search_path: %w", err)
		}
		if _, err := tx.Exec(ctx, dbtx.InSchema(schema, createMigrationTableSQL)); err != nil {
			return fmt.Errorf("create notified_migration: %w", err)
		}
		var current int
		if err := tx.QueryRow(ctx, dbtx.InSchema(schema, currentVersionSQL)).Scan(&current); err != nil {
			return fmt.Errorf("read applied migrations: %w", err)
		}
		var err error
		out, err = fn(tx, current)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("migrate schema %s: %w", schema, err)
	}
	return out, nil
}

// Current returns the newest applied version of notified's migrations in
// schema, or 0 when none is; db is a pool, a connection or a transaction.
func Current(ctx context.Context, db dbtx.DBTX, schema string) (int, error) {
	var exists bool
	table := Qualify(schema, "notified_migration")
	if err := db.QueryRow(ctx, tableExistsSQL, table).Scan(&exists); err != nil {
		return 0, fmt.Errorf("look for %s: %w", table, err)
	}
	if !exists {
		return 0, nil
	}
	var v int
	if err := db.QueryRow(ctx, dbtx.InSchema(schema, currentVersionSQL)).Scan(&v); err != nil {
		return 0, fmt.Errorf("read %s: %w", table, err)
	}
	return v, nil
}

// Latest is the newest version of notified's migrations in this build.
func Latest() int {
	all, err := All()
	if err != nil || len(all) == 0 {
		return 0
	}
	return all[len(all)-1].Version
}

// Qualify returns the quoted name of notified's table name in schema, or the
// unqualified quoted name when schema is empty.
func Qualify(schema, name string) string { return ident.Qualify(schema, name) }

// ErrNotMigrated says the schema lacks notified's tables.
var ErrNotMigrated = errors.New("notified's tables are missing or out of date")

// Check returns ErrNotMigrated, wrapped with what to do, unless schema holds
// the newest version of notified's migrations. When notified's tables are
// missing where they were looked for but other schemas have them, the error
// is an *ElsewhereError, which names those, since migrating would create a
// second set: when schema is empty (the current schema, where a forgotten
// setting leads), or names a schema that does not exist (a typo). A schema
// that exists and was named is where the caller means to have them.
func Check(ctx context.Context, db dbtx.DBTX, schema string) error {
	v, err := Current(ctx, db, schema)
	if err != nil {
		return err
	}
	if v >= Latest() {
		return nil
	}
	if v == 0 {
		if err := checkElsewhere(ctx, db, schema); err != nil {
			return err
		}
	}
	where, flag := "the current schema", ""
	if schema != "" {
		where, flag = "schema "+schema, " --schema "+schema
	}
	return fmt.Errorf("%w in %s (version %d, want %d): run `notified-bridge migrate%s` first",
		ErrNotMigrated, where, v, Latest(), flag)
}

// ElsewhereError says that notified's tables are missing in the schema
// asked for but exist in others. It wraps ErrNotMigrated.
type ElsewhereError struct {
	// Schema is the schema asked for, resolved.
	Schema string
	// Found are the schemas that hold notified's tables, in name order.
	Found []string
}

func (e *ElsewhereError) Error() string {
	if len(e.Found) == 1 {
		return fmt.Sprintf("notified's tables are not in schema %s but in schema %s: set NOTIFIED_SCHEMA=%s (or --schema %s)",
			e.Schema, e.Found[0], e.Found[0], e.Found[0])
	}
	return fmt.Sprintf("notified's tables are not in schema %s but in schemas %s: set NOTIFIED_SCHEMA (or --schema) to the one to use, e.g. NOTIFIED_SCHEMA=%s",
		e.Schema, strings.Join(e.Found, ", "), e.Found[0])
}

// Unwrap returns ErrNotMigrated.
func (e *ElsewhereError) Unwrap() error { return ErrNotMigrated }

// checkElsewhere returns an *ElsewhereError when schema is empty or does
// not exist and other schemas hold notified's migrations table, and nil
// otherwise. Only schemas that ValidateSchema accepts are named, as only
// they can be given.
func checkElsewhere(ctx context.Context, db dbtx.DBTX, schema string) error {
	if schema != "" {
		var exists bool
		if err := db.QueryRow(ctx, schemaExistsSQL, schema).Scan(&exists); err != nil {
			return fmt.Errorf("look for schema %s: %w", schema, err)
		}
		if exists {
			return nil
		}
	}
	resolved, err := ResolveSchema(ctx, db, schema)
	if err != nil {
		return err
	}
	rows, err := db.Query(ctx, otherSchemasSQL, resolved)
	if err != nil {
		return fmt.Errorf("look for notified's tables in other schemas: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("look for notified's tables in other schemas: %w", err)
	}
	var found []string
	for _, n := range names {
		if ValidateSchema(n) == nil {
			found = append(found, n)
		}
	}
	if len(found) == 0 {
		return nil
	}
	return &ElsewhereError{Schema: resolved, Found: found}
}
