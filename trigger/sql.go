package trigger

// The queries Inspect and Install run besides the trigger's own SQL. They
// read the catalogs and notified's tables only, never the events table
// (whose owner chooses its types), name catalog functions with their
// schema, and take every value as a parameter. {schema}. stands for
// notified's schema (see dbtx.InSchema), {sequence} for a sequence's quoted
// name.

// catalogNameSQL returns the schema and name of the table $1 (a quoted
// name, qualified or found through the search_path).
const catalogNameSQL = `SELECT n.nspname, c.relname FROM pg_catalog.pg_class c
	JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
	WHERE c.oid = pg_catalog.to_regclass($1)`

// columnSQL returns, for column $2 of the table $1 (a quoted, qualified
// name): the OID and the formatted name of its type; the sequence that
// numbers it, as OID, schema and name, or NULLs (the sequence the column
// owns, as a serial's or an identity's, else the one its default names);
// and whether the trigger named $3 is on the table.
const columnSQL = `SELECT a.atttypid, pg_catalog.format_type(a.atttypid, a.atttypmod),
		seq.oid, seq.nspname::text, seq.relname::text,
		EXISTS (SELECT FROM pg_catalog.pg_trigger t WHERE t.tgrelid = a.attrelid AND t.tgname = $3)
	FROM pg_catalog.pg_attribute a
	LEFT JOIN LATERAL (
		SELECT s.oid, n.nspname, s.relname
		FROM (
			SELECT d.objid AS oid, 1 AS pref FROM pg_catalog.pg_depend d
			WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
				AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
				AND d.refobjid = a.attrelid AND d.refobjsubid = a.attnum AND d.deptype IN ('a', 'i')
			UNION ALL
			SELECT d.refobjid, 2 FROM pg_catalog.pg_attrdef ad
			JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_attrdef'::pg_catalog.regclass AND d.objid = ad.oid
				AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
			WHERE ad.adrelid = a.attrelid AND ad.adnum = a.attnum
		) dep
		JOIN pg_catalog.pg_class s ON s.oid = dep.oid AND s.relkind = 'S'
		JOIN pg_catalog.pg_namespace n ON n.oid = s.relnamespace
		ORDER BY dep.pref, s.oid
		LIMIT 1
	) seq ON true
	WHERE a.attrelid = pg_catalog.to_regclass($1) AND a.attname = $2 AND a.attnum > 0 AND NOT a.attisdropped`

// sequenceSQL returns, for the sequence $1 (an OID), whether the current
// role may read it, the role, and its increment, minimum and maximum.
const sequenceSQL = `SELECT pg_catalog.has_sequence_privilege(p.seqrelid, 'SELECT'), current_user::text,
		p.seqincrement, p.seqmin, p.seqmax
	FROM pg_catalog.pg_sequence p WHERE p.seqrelid = $1`

// sequenceStateSQL returns where the sequence {sequence} stands: its last
// value and whether nextval has returned it.
const sequenceStateSQL = `SELECT last_value, is_called FROM {sequence}`

// hasRecordsSQL returns whether channel $1 has dispatch records that stop
// an event from being dispatched (a missing one does not: the bridge
// replaces it when the row appears). The primary key (channel, event_id)
// serves it.
const hasRecordsSQL = `SELECT EXISTS (SELECT FROM {schema}.notified_dispatch WHERE channel = $1 AND outcome <> 'missing')`

// countRecordsSQL counts them.
const countRecordsSQL = `SELECT count(*) FROM {schema}.notified_dispatch WHERE channel = $1 AND outcome <> 'missing'`

// recordedAheadSQL counts those of channel $1 whose id is an integer
// between $3 and $4 as Postgres writes integers (the key under which the
// bridge records an integer id), and returns the least and the greatest.
// It reads every record of the channel; $2 is a length that every such id
// reaches (that of $3, when $3 is positive), tested first so that the ids
// behind an ascending sequence, usually nearly all, cost no regular
// expression and no conversion. Measured with 1,000,000 records of the
// channel (and as many of another) on two busy shared cores: Inspect took
// 0.7-1.2 s with the sequence past them all, 2.7-3.0 s with all of them
// ahead of it.
const recordedAheadSQL = `SELECT count(*), min(r.n)::pg_catalog.int8, max(r.n)::pg_catalog.int8
	FROM (
		SELECT CASE WHEN pg_catalog.octet_length(event_id) >= $2 AND event_id ~ '^(0|-?[1-9][0-9]*)$'
			THEN event_id::pg_catalog.numeric END AS n
		FROM {schema}.notified_dispatch
		WHERE channel = $1 AND outcome <> 'missing'
	) r
	WHERE r.n BETWEEN $3::pg_catalog.int8 AND $4::pg_catalog.int8`

// notifyTriggersSQL returns the other triggers on the table $1 (a quoted,
// qualified name) that would also notify the channel $3 on an insert:
// enabled row triggers on INSERT, other than $2 and notified's capture
// triggers, whose function's source calls pg_notify and names the channel:
// as a string literal in its source, or as one of the trigger's arguments
// (which tgargs holds, each followed by a zero byte). For each: the trigger's name
// and its function, as regprocedure writes it.
const notifyTriggersSQL = `SELECT t.tgname::text, p.oid::pg_catalog.regprocedure::text
	FROM pg_catalog.pg_trigger t
	JOIN pg_catalog.pg_proc p ON p.oid = t.tgfoid
	WHERE t.tgrelid = pg_catalog.to_regclass($1) AND NOT t.tgisinternal AND t.tgenabled <> 'D'
		AND (t.tgtype & 4) <> 0
		AND t.tgname <> $2 AND t.tgname NOT LIKE 'notified\_capture\_%'
		AND p.prosrc ILIKE '%pg_notify%'
		AND (pg_catalog.strpos(p.prosrc, pg_catalog.quote_literal($3)) > 0
			OR pg_catalog.position('\x00'::bytea || t.tgargs, '\x00'::bytea || pg_catalog.convert_to($3, 'UTF8') || '\x00'::bytea) > 0)
	ORDER BY 1`

// currentSchemaSQL returns the connection's current schema, or NULL.
const currentSchemaSQL = `SELECT pg_catalog.current_schema()::text`

// triggerExistsSQL returns whether the trigger $2 is on the table $1 (a
// quoted, qualified name; NULL when the table does not exist).
const triggerExistsSQL = `SELECT EXISTS (SELECT FROM pg_catalog.pg_trigger
	WHERE tgrelid = pg_catalog.to_regclass($1) AND tgname = $2)`

// functionExistsSQL returns whether the function $1 (quoted, qualified,
// with its argument list) exists.
const functionExistsSQL = `SELECT pg_catalog.to_regprocedure($1) IS NOT NULL`

// functionUsersSQL returns the triggers that call the function $1 (quoted,
// qualified, with its argument list), as table.trigger.
const functionUsersSQL = `SELECT t.tgrelid::pg_catalog.regclass::text || '.' || pg_catalog.quote_ident(t.tgname)
	FROM pg_catalog.pg_trigger t
	WHERE t.tgfoid = pg_catalog.to_regprocedure($1)
	ORDER BY 1`

// captureTriggersSQL returns notified's capture triggers on the table $1
// (a quoted, qualified name) other than $2.
const captureTriggersSQL = `SELECT tgname::text FROM pg_catalog.pg_trigger
	WHERE tgrelid = pg_catalog.to_regclass($1) AND tgname LIKE 'notified\_capture\_%' AND tgname <> $2
	ORDER BY 1`
