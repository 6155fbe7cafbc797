package migrations

// The queries that apply and read notified's migrations; the migrations
// themselves are the .sql files. {schema} stands for the quoted schema
// (see dbtx.InSchema); every value is a parameter.

// currentSchemaSQL returns the connection's current schema: the first
// existing one of its search_path, or NULL.
const currentSchemaSQL = `SELECT current_schema()`

// schemaExistsSQL returns whether the schema $1 exists.
const schemaExistsSQL = `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`

// createSchemaSQL creates the schema.
const createSchemaSQL = `CREATE SCHEMA IF NOT EXISTS {schema}`

// lockSQL waits for, and takes, the session's advisory lock on the
// migrations of the schema $1; unlockSQL releases it.
const (
	lockSQL   = `SELECT pg_advisory_lock(hashtext('notified_migrate:' || $1::text))`
	unlockSQL = `SELECT pg_advisory_unlock(hashtext('notified_migrate:' || $1::text))`
)

// setSearchPathSQL sets the search_path to $1 until the transaction ends.
const setSearchPathSQL = `SELECT set_config('search_path', $1, true)`

// createMigrationTableSQL creates the table of applied migrations, unless
// it exists.
const createMigrationTableSQL = `CREATE TABLE IF NOT EXISTS {schema}.notified_migration (
	version    integer     PRIMARY KEY,
	name       text        NOT NULL,
	applied_at timestamptz NOT NULL DEFAULT now()
)`

// tableExistsSQL returns whether the table $1 (a quoted name, as Qualify
// writes it) exists.
const tableExistsSQL = `SELECT to_regclass($1) IS NOT NULL`

// currentVersionSQL returns the newest applied version, 0 when none is.
const currentVersionSQL = `SELECT coalesce(max(version), 0) FROM {schema}.notified_migration`

// recordMigrationSQL records that version $1, named $2, is applied.
const recordMigrationSQL = `INSERT INTO {schema}.notified_migration (version, name) VALUES ($1, $2)`

// unrecordMigrationSQL records that version $1 is reverted.
const unrecordMigrationSQL = `DELETE FROM {schema}.notified_migration WHERE version = $1`

// otherSchemasSQL returns, in name order, the schemas other than $1 that
// hold notified's migrations table.
const otherSchemasSQL = `SELECT n.nspname::text FROM pg_catalog.pg_class c
	JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
	WHERE c.relname = 'notified_migration' AND c.relkind IN ('r', 'p') AND n.nspname <> $1
	ORDER BY 1`
