package eventstable

import (
	"strconv"
	"strings"
)

// FetchSQL selects the rows of the given ids: id as text, name as text and
// the whole row as a JSON object.
func (t *Table) FetchSQL() string {
	return "SELECT e." + t.IDCol + "::text, e." + t.NameCol + "::text, row_to_json(e)::text FROM " +
		t.Ident + " AS e WHERE e." + t.IDCol + " = ANY($1::" + t.ArrayType() + ")"
}

// Placement of a fetched row, as FetchBoundedSQL's third column says.
const (
	RowInline   = 0 // the row's data is read: its jobs are inserted from the bridge
	RowLarge    = 1 // the row is larger than LargeRowBytes: its jobs are inserted by the server
	RowDeferred = 2 // past the batch's byte budget: it goes back to the outbox
)

// FetchBoundedSQL selects the rows of the ids in $1, in that order, each
// measured in the server before the bridge holds any of it: id as text,
// name as text, its placement, and the whole row as a JSON object only when
// it is inline.
//
// A row is measured twice. Its stored size (pg_column_size of the row, read
// without decompressing anything) comes first and is cheap: a row stored
// in more than $3 bytes is large, and its JSON is not built here at all;
// once the stored sizes so far (large rows counted as $3) pass $2 bytes,
// the rest are deferred and not built either. The JSON of the others is
// then built and measured exactly, as compressed values can be far larger
// than they are stored: JSON over $3 bytes makes the row large, and once
// the JSON so far passes $2 bytes the rest are deferred. The first row is
// never deferred, as $3 <= $2.
//
// The fifth column is the results of the route filters of the row's name:
// $4 are event names and $5 jsonpath predicates, pairwise (see
// FilterResultsSQL). It is empty for a row whose name has no filter, and
// for a row already deferred by its stored size; a large row's filters are
// evaluated too, as its JSON never leaves the server. The sixth is the lane
// keys of the ordered routes of the row's name: $6 are event names and $7
// key paths, pairwise (see LaneKeysSQL); NULL for a row whose name has no
// ordered route.
func (t *Table) FetchBoundedSQL() string {
	return `WITH s AS (
			SELECT k.ord, e AS ev, pg_column_size(e.*) AS stored,
				sum(least(pg_column_size(e.*), $3::bigint)) OVER (ORDER BY k.ord) AS cum
			FROM unnest($1::` + t.ArrayType() + `) WITH ORDINALITY AS k(id, ord)
			JOIN ` + t.Ident + ` AS e ON e.` + t.IDCol + ` = k.id
		), f AS (
			SELECT s.ord, (s.ev).` + t.IDCol + `::text AS id, (s.ev).` + t.NameCol + `::text AS name, s.cum, x.j, y.filters, y.keys,
				CASE WHEN x.j IS NULL OR octet_length(x.j) > $3::bigint THEN least(s.stored, $3::bigint) ELSE octet_length(x.j) END AS held
			FROM s
			LEFT JOIN LATERAL (
				SELECT row_to_json(s.ev)::text AS j WHERE s.cum <= $2::bigint AND s.stored <= $3::bigint OFFSET 0
			) x ON true
			LEFT JOIN LATERAL (
				SELECT ` + FilterResultsSQL("r.jb", "(s.ev)."+t.NameCol+"::text", "$4", "$5") + ` AS filters,
					` + LaneKeysSQL("r.jb", "(s.ev)."+t.NameCol+"::text", "$6", "$7") + ` AS keys
				FROM (SELECT row_to_json(s.ev)::jsonb AS jb OFFSET 0) r
				WHERE s.cum <= $2::bigint
					AND ((s.ev).` + t.NameCol + `::text = ANY($4::text[]) OR (s.ev).` + t.NameCol + `::text = ANY($6::text[]))
			) y ON true
		), g AS (
			SELECT id, name, j, filters, keys, cum, sum(held) OVER (ORDER BY ord) AS cum2 FROM f
		)
		SELECT id, name,
			CASE WHEN cum > $2::bigint OR cum2 > $2::bigint THEN 2
				WHEN j IS NULL OR octet_length(j) > $3::bigint THEN 1 ELSE 0 END,
			CASE WHEN cum <= $2::bigint AND cum2 <= $2::bigint AND octet_length(j) <= $3::bigint THEN j END,
			coalesce(filters, ''), keys
		FROM g`
}

// ArrayType is the type of an array of parsed ids, as a parameter.
func (t *Table) ArrayType() string {
	switch t.Kind {
	case IDInteger:
		return "bigint[]"
	case IDUUID:
		return "uuid[]"
	}
	return "text[]"
}

// BoundType is the SQL type a range bound is compared as: the id column's
// own, so that numbers compare as numbers and the column's index serves.
func (t *Table) BoundType() string {
	return strings.TrimSuffix(t.ArrayType(), "[]")
}

// FetchFilteredSQL is FetchSQL (RowNamesSQL without data) with a fourth
// column: the results of the route filters $2 (names) and $3 (paths) of
// the row's name on the row (see FilterResultsSQL), empty when its name
// has none; and a fifth: the lane keys of the ordered routes $4 (names)
// and $5 (key paths) of the row's name (see LaneKeysSQL), NULL when its
// name has none.
func (t *Table) FetchFilteredSQL(data bool) string {
	d := "row_to_json(e)::text"
	if !data {
		d = "NULL::text"
	}
	return "SELECT e." + t.IDCol + "::text, e." + t.NameCol + "::text, " + d + ", coalesce(f.filters, ''), f.keys FROM " + t.Ident + ` AS e
		LEFT JOIN LATERAL (
			SELECT ` + FilterResultsSQL("r.jb", "e."+t.NameCol+"::text", "$2", "$3") + ` AS filters,
				` + LaneKeysSQL("r.jb", "e."+t.NameCol+"::text", "$4", "$5") + ` AS keys
			FROM (SELECT row_to_json(e)::jsonb AS jb OFFSET 0) r
			WHERE e.` + t.NameCol + `::text = ANY($2::text[]) OR e.` + t.NameCol + `::text = ANY($4::text[])
		) f ON true
		WHERE e.` + t.IDCol + " = ANY($1::" + t.ArrayType() + ")"
}

// RowNamesSQL selects the id and name of the rows of ids $1, and a NULL
// where FetchSQL has the row's data.
func (t *Table) RowNamesSQL() string {
	return "SELECT e." + t.IDCol + "::text, e." + t.NameCol + "::text, NULL::text FROM " + t.Ident +
		" AS e WHERE e." + t.IDCol + " = ANY($1::" + t.ArrayType() + ")"
}

// NamesSQL selects the distinct names of the rows of ids $1.
func (t *Table) NamesSQL() string {
	return "SELECT DISTINCT e." + t.NameCol + "::text FROM " + t.Ident + " AS e WHERE e." + t.IDCol +
		" = ANY($1::" + t.ArrayType() + ") AND e." + t.NameCol + " IS NOT NULL"
}

// The result of a route filter on a row, a character of FilterResultsSQL's
// text.
const (
	FilterNoMatch = '0' // the predicate is false
	FilterMatch   = '1' // the predicate is true
	FilterError   = '2' // the predicate is unknown: the row cannot be evaluated (strict mode on a missing key, a type mismatch)
)

// FilterResultsSQL is an expression: the results of the route filters for
// an event named name, whose row is the jsonb jb, in order, as text of one
// character each (FilterMatch, FilterNoMatch or FilterError; text rather
// than an array, as it costs the bridge one allocation per row to read).
// names and paths are parameters, text arrays paired element by element:
// paths[i] is a jsonpath predicate, the filter of a route of names[i]. Each
// is evaluated by jsonb_path_match in silent mode, so that a row the filter
// cannot evaluate gives unknown (NULL), not an error. In a custom plan the
// paths are parsed once per statement.
func FilterResultsSQL(jb, name, names, paths string) string {
	return `(SELECT string_agg(coalesce(jsonb_path_match(` + jb + `, p.path, '{}', true)::int, 2)::text, '' ORDER BY p.ord)
		FROM unnest(` + names + `::text[], ` + paths + `::text[]::jsonpath[]) WITH ORDINALITY AS p(name, path, ord)
		WHERE p.name = ` + name + `)`
}

// MaxLaneKeyBytes is the longest lane key kept as it is: a longer key is
// kept as "sha256:" and the hex digest of its text (see LaneKeysSQL).
const MaxLaneKeyBytes = 200

// LaneKeysSQL is an expression: the lane keys of the ordered routes for an
// event named name, whose row is the jsonb jb, in order, as a text array
// (NULL when the name has no ordered route). names and paths are
// parameters, text arrays paired element by element: paths[i] is the
// jsonpath of the key of an ordered route of names[i]. A key is the first
// item the path selects, as JSON text (42, "A-17"), evaluated in silent
// mode; NULL when it selects nothing or JSON null (the event is then not
// ordered). A key longer than MaxLaneKeyBytes is replaced by its SHA-256,
// so that a row cannot make a lane key too large to index.
func LaneKeysSQL(jb, name, names, paths string) string {
	return `(SELECT array_agg(CASE
			WHEN k.v IS NULL OR jsonb_typeof(k.v) = 'null' THEN NULL
			WHEN octet_length(k.v::text) > ` + strconv.Itoa(MaxLaneKeyBytes) + ` THEN 'sha256:' || encode(sha256(convert_to(k.v::text, 'UTF8')), 'hex')
			ELSE k.v::text END ORDER BY p.ord)
		FROM unnest(` + names + `::text[], ` + paths + `::text[]::jsonpath[]) WITH ORDINALITY AS p(name, path, ord),
			LATERAL (SELECT jsonb_path_query_first(` + jb + `, p.path, '{}', true) AS v) k
		WHERE p.name = ` + name + `)`
}
