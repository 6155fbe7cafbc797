package eventstable

import "strings"

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
// evaluated too, as its JSON never leaves the server.
func (t *Table) FetchBoundedSQL() string {
	return `WITH s AS (
			SELECT k.ord, e AS ev, pg_column_size(e.*) AS stored,
				sum(least(pg_column_size(e.*), $3::bigint)) OVER (ORDER BY k.ord) AS cum
			FROM unnest($1::` + t.ArrayType() + `) WITH ORDINALITY AS k(id, ord)
			JOIN ` + t.Ident + ` AS e ON e.` + t.IDCol + ` = k.id
		), f AS (
			SELECT s.ord, (s.ev).` + t.IDCol + `::text AS id, (s.ev).` + t.NameCol + `::text AS name, s.cum, x.j, y.filters,
				CASE WHEN x.j IS NULL OR octet_length(x.j) > $3::bigint THEN least(s.stored, $3::bigint) ELSE octet_length(x.j) END AS held
			FROM s
			LEFT JOIN LATERAL (
				SELECT row_to_json(s.ev)::text AS j WHERE s.cum <= $2::bigint AND s.stored <= $3::bigint OFFSET 0
			) x ON true
			LEFT JOIN LATERAL (
				SELECT ` + FilterResultsSQL("r.jb", "(s.ev)."+t.NameCol+"::text", "$4", "$5") + ` AS filters
				FROM (SELECT row_to_json(s.ev)::jsonb AS jb OFFSET 0) r
				WHERE s.cum <= $2::bigint AND (s.ev).` + t.NameCol + `::text = ANY($4::text[])
			) y ON true
		), g AS (
			SELECT id, name, j, filters, cum, sum(held) OVER (ORDER BY ord) AS cum2 FROM f
		)
		SELECT id, name,
			CASE WHEN cum > $2::bigint OR cum2 > $2::bigint THEN 2
				WHEN j IS NULL OR octet_length(j) > $3::bigint THEN 1 ELSE 0 END,
			CASE WHEN cum <= $2::bigint AND cum2 <= $2::bigint AND octet_length(j) <= $3::bigint THEN j END,
			coalesce(filters, '')
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
// has none.
func (t *Table) FetchFilteredSQL(data bool) string {
	d := "row_to_json(e)::text"
	if !data {
		d = "NULL::text"
	}
	return "SELECT e." + t.IDCol + "::text, e." + t.NameCol + "::text, " + d + ", coalesce(f.filters, '') FROM " + t.Ident + ` AS e
		LEFT JOIN LATERAL (
			SELECT ` + FilterResultsSQL("r.jb", "e."+t.NameCol+"::text", "$2", "$3") + ` AS filters
			FROM (SELECT row_to_json(e)::jsonb AS jb OFFSET 0) r
			WHERE e.` + t.NameCol + `::text = ANY($2::text[])
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
