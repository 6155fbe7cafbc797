package routes_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/notified/notified/internal/testdb"
	"github.com/notified/notified/routes"
)

func TestWhereRoundTrip(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ctx := context.Background()
	s := routes.NewStore(db.Pool, db.Schema)

	require.NoError(t, s.Add(ctx, routes.Route{Event: "order_placed", Kind: "big_order_alert", Where: "  $.total > 1000 "}))
	require.NoError(t, s.Add(ctx, routes.Route{Event: "order_placed", Kind: "ship_order"}))
	got, err := s.List(ctx)
	require.NoError(t, err)
	require.Equal(t, []routes.Route{
		{Event: "order_placed", Kind: "big_order_alert", Queue: "default", Priority: 1, MaxAttempts: 25, Where: "$.total > 1000"},
		{Event: "order_placed", Kind: "ship_order", Queue: "default", Priority: 1, MaxAttempts: 25},
	}, got, "the filter is kept as written, trimmed")

	// Adding the route again without a filter removes it; AddMissing
	// leaves an existing route's filter as it is.
	require.NoError(t, s.Add(ctx, routes.Route{Event: "order_placed", Kind: "big_order_alert"}))
	added, err := s.AddMissing(ctx, routes.Route{Event: "order_placed", Kind: "ship_order", Where: `strict $.country == "FR"`},
		routes.Route{Event: "refund", Kind: "audit", Where: `$.amount >= 0 && exists($.reason)`})
	require.NoError(t, err)
	require.Len(t, added, 1)
	require.NoError(t, s.Ensure(ctx, routes.Route{Event: "refund", Kind: "notify", Where: `$.items[*].sku like_regex "^X"`}))
	got, err = s.List(ctx)
	require.NoError(t, err)
	where := map[string]string{}
	for _, r := range got {
		where[r.Event+"/"+r.Kind] = r.Where
	}
	require.Equal(t, map[string]string{
		"order_placed/big_order_alert": "", "order_placed/ship_order": "",
		"refund/audit": `$.amount >= 0 && exists($.reason)`, "refund/notify": `$.items[*].sku like_regex "^X"`,
	}, where)
}

func TestWhereRefused(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ctx := context.Background()
	s := routes.NewStore(db.Pool, db.Schema)

	tests := []struct {
		name, where string
		wantErr     []string
	}{
		{"syntax error", "$.total >", []string{`route e -> k: invalid filter "$.total >": syntax error at end of jsonpath input: write a jsonpath predicate, e.g. '$.total > 1000'`}},
		{"not a path", "total > 1000", []string{`invalid filter "total > 1000": syntax error`, "e.g. '$.total > 1000'"}},
		{"selects items", "$.total", []string{`invalid filter "$.total" is not a predicate (single boolean result is expected): compare, e.g. '$.total > 1000'`}},
		{"the whole row", "$", []string{`"$" is not a predicate (single boolean result is expected)`}},
		{"a filter expression", "$ ? (@.total > 1000)", []string{`is not a predicate (single boolean result is expected)`}},
		{"strict item", "strict $.a.b", []string{`"strict $.a.b" is not a predicate (JSON object does not contain key "a")`}},
		{"a variable", "$.total > $min", []string{`invalid filter "$.total > $min": could not find jsonpath variable "min"`}},
		{"an SQL injection", "$.a > 1'); DROP TABLE x; --", []string{`invalid filter "$.a > 1'); DROP TABLE x; --": trailing junk`}},
		{"too long", "$.a > " + strings.Repeat("1", routes.MaxWhereLength), []string{"filter is longer than 4096 bytes", "e.g. '$.total > 1000'"}},
		{"NUL byte", "$.a > 1\x00", []string{"filter is not valid UTF-8 text"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := routes.Route{Event: "e", Kind: "k", Where: tt.where}
			for _, err := range []error{s.Add(ctx, r), s.Ensure(ctx, r), func() error { _, err := s.AddMissing(ctx, r); return err }()} {
				require.Error(t, err)
				for _, want := range tt.wantErr {
					require.Contains(t, err.Error(), want)
				}
				require.NotContains(t, err.Error(), "\n", "one line")
				if !strings.Contains(tt.name, "long") && !strings.Contains(tt.name, "NUL") {
					require.ErrorIs(t, err, routes.ErrInvalidWhere)
				}
			}
		})
	}
	got, err := s.List(ctx)
	require.NoError(t, err)
	require.Empty(t, got, "nothing refused was written")
}

// TestWhereCheckConstraint writes filters past the store: the database
// refuses what does not parse as a jsonpath, and an empty one.
func TestWhereCheckConstraint(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ctx := context.Background()
	table := pgx.Identifier{db.Schema, "notified_route"}.Sanitize()
	for _, where := range []string{"$.total >", ""} {
		_, err := db.Pool.Exec(ctx, "INSERT INTO "+table+" (event_name, kind, filter_path) VALUES ('e', 'k', $1)", where)
		require.Error(t, err, "filter %q", where)
	}
	_, err := db.Pool.Exec(ctx, "INSERT INTO "+table+" (event_name, kind, filter_path) VALUES ('e', 'k', '$.a == 1')")
	require.NoError(t, err)
}
