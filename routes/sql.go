package routes

// The store's queries. {schema}. stands for the store's schema (see
// dbtx.InSchema); every value is a parameter.

// upsertRouteSQL creates the route from event $1 to kind $2 with queue $3,
// priority $4 and max attempts $5, or updates those three if it exists.
const upsertRouteSQL = `INSERT INTO {schema}.notified_route (event_name, kind, queue, priority, max_attempts)
	VALUES ($1, $2, $3, $4, $5)
	ON CONFLICT (event_name, kind) DO UPDATE
	SET queue = excluded.queue, priority = excluded.priority,
	    max_attempts = excluded.max_attempts, updated_at = now()`

// addRouteIfMissingSQL creates the route like upsertRouteSQL, and does
// nothing if it exists.
const addRouteIfMissingSQL = `INSERT INTO {schema}.notified_route (event_name, kind, queue, priority, max_attempts)
	VALUES ($1, $2, $3, $4, $5) ON CONFLICT (event_name, kind) DO NOTHING`

// removeRouteSQL deletes the route from event $1 to kind $2.
const removeRouteSQL = `DELETE FROM {schema}.notified_route WHERE event_name = $1 AND kind = $2`

// listRoutesSQL lists every route, ordered by event and kind.
const listRoutesSQL = `SELECT event_name, kind, queue, priority, max_attempts
	FROM {schema}.notified_route ORDER BY event_name, kind`
