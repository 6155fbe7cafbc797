package trigger

// The queries Plan and Install run besides the trigger's own SQL. They read
// only the catalogs (and, later, notified's tables), name every function
// with its schema, and take every value as a parameter.

// columnTypeSQL returns the OID and the formatted type of column $2 of the
// table $1 (a quoted, qualified name).
const columnTypeSQL = `SELECT a.atttypid, pg_catalog.format_type(a.atttypid, a.atttypmod)
	FROM pg_catalog.pg_attribute a
	WHERE a.attrelid = pg_catalog.to_regclass($1) AND a.attname = $2 AND a.attnum > 0 AND NOT a.attisdropped`
