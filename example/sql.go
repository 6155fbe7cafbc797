package example

// The queries of the audit handler. {schema}. stands for the schema of
// example_audit (see dbtx.InSchema); every value is a parameter.

// createAuditTableSQL creates example_audit, one row per event recorded,
// unless it exists.
const createAuditTableSQL = `CREATE TABLE IF NOT EXISTS {schema}.example_audit (
	event_id text NOT NULL,
	event_name text NOT NULL,
	handler text NOT NULL,
	data jsonb,
	recorded_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (event_id, event_name)
)`

// insertAuditSQL records event $1 named $2, handled by $3, with its row $4,
// unless it is recorded already.
const insertAuditSQL = `INSERT INTO {schema}.example_audit (event_id, event_name, handler, data)
	VALUES ($1, $2, $3, $4)
	ON CONFLICT (event_id, event_name) DO NOTHING`
