package routes

// The store's queries. {schema}. stands for the store's schema (see
// dbtx.InSchema); every value is a parameter.

// upsertRouteSQL creates the route from event $1 to kind $2 with queue $3,
// priority $4, max attempts $5, filter $6 (NULL: none), ordering key $7
// (NULL: not ordered), on-failure $8, webhook URL $9 (empty for none) and
// secret variable $10, or updates those if it exists.
const upsertRouteSQL = `INSERT INTO {schema}.notified_route (event_name, kind, queue, priority, max_attempts, filter_path, ordered_by, on_failure,
		webhook_url, secret_env)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
	ON CONFLICT (event_name, kind, webhook_url) DO UPDATE
	SET queue = excluded.queue, priority = excluded.priority,
	    max_attempts = excluded.max_attempts, filter_path = excluded.filter_path,
	    ordered_by = excluded.ordered_by, on_failure = excluded.on_failure, secret_env = excluded.secret_env, updated_at = now()`

// addRouteIfMissingSQL creates the route like upsertRouteSQL, and does
// nothing if it exists.
const addRouteIfMissingSQL = `INSERT INTO {schema}.notified_route (event_name, kind, queue, priority, max_attempts, filter_path, ordered_by, on_failure,
		webhook_url, secret_env)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (event_name, kind, webhook_url) DO NOTHING`

// removeRouteSQL deletes the route from event $1 to kind $2 and webhook URL
// $3 (empty for none).
const removeRouteSQL = `DELETE FROM {schema}.notified_route WHERE event_name = $1 AND kind = $2 AND webhook_url = $3`

// listRoutesSQL lists every route, ordered by event, kind and webhook URL,
// with its filter and ordering key (empty for none), for an ordered route
// its on-failure, and its webhook URL and secret variable (empty for none).
const listRoutesSQL = `SELECT event_name, kind, queue, priority, max_attempts, coalesce(filter_path, ''),
		coalesce(ordered_by, ''), CASE WHEN ordered_by IS NULL THEN '' ELSE on_failure END,
		webhook_url, coalesce(secret_env, '')
	FROM {schema}.notified_route ORDER BY event_name, kind, webhook_url`

// checkOrderedBySQL says what $1, a jsonpath, selects in an empty object:
// "predicate" (a boolean or unknown), "row" (the object itself) or "key".
// A path that does not parse, or that names a variable, fails.
const checkOrderedBySQL = `SELECT CASE
		WHEN r IN ('[true]', '[false]', '[null]') THEN 'predicate'
		WHEN r = '[{}]' THEN 'row'
		ELSE 'key' END
	FROM (SELECT jsonb_path_query_array('{}'::jsonb, $1::jsonpath, '{}', true) AS r) x`

// checkWhereSQL says whether $1 is a jsonpath predicate: evaluated on an
// empty object, without raising the errors of evaluation, it gives one
// boolean or unknown (null), as a predicate does on any row, where a path
// that selects items gives none ($.total), or something else ($). A path
// that does not parse, or that names a variable, fails.
const checkWhereSQL = `SELECT jsonb_path_query_array('{}'::jsonb, $1::jsonpath, '{}', true) IN ('[true]', '[false]', '[null]')`

// matchEmptySQL evaluates $1 on an empty object as a filter, raising the
// errors evaluation meets: for a path that is not a predicate, the server
// then says why.
const matchEmptySQL = `SELECT jsonb_path_match('{}'::jsonb, $1::jsonpath)`
