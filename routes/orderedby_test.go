package routes_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/notified/notified/internal/testdb"
	"github.com/notified/notified/routes"
)

func TestOrderedByRoundTrip(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ctx := context.Background()
	s := routes.NewStore(db.Pool, db.Schema)

	require.NoError(t, s.Add(ctx, routes.Route{Event: "order_event", Kind: "fulfil", OrderedBy: " $.order_id ", OnFailure: routes.OnFailureStop}))
	require.NoError(t, s.Add(ctx, routes.Route{Event: "order_event", Kind: "audit", OrderedBy: `$.customer.id`}))
	require.NoError(t, s.Add(ctx, routes.Route{Event: "order_event", Kind: "mail"}))
	got, err := s.List(ctx)
	require.NoError(t, err)
	require.Equal(t, []routes.Route{
		{Event: "order_event", Kind: "audit", Queue: "default", Priority: 1, MaxAttempts: 25, OrderedBy: "$.customer.id", OnFailure: routes.OnFailureContinue},
		{Event: "order_event", Kind: "fulfil", Queue: "default", Priority: 1, MaxAttempts: 25, OrderedBy: "$.order_id", OnFailure: routes.OnFailureStop},
		{Event: "order_event", Kind: "mail", Queue: "default", Priority: 1, MaxAttempts: 25},
	}, got)

	// Adding it again without ordering makes it unordered; AddMissing
	// leaves an existing route's ordering as it is.
	require.NoError(t, s.Add(ctx, routes.Route{Event: "order_event", Kind: "fulfil"}))
	added, err := s.AddMissing(ctx, routes.Route{Event: "order_event", Kind: "mail", OrderedBy: "$.order_id"})
	require.NoError(t, err)
	require.Empty(t, added)
	got, err = s.List(ctx)
	require.NoError(t, err)
	require.Equal(t, "", got[1].OrderedBy)
	require.Equal(t, "", got[1].OnFailure, "on failure says nothing of an unordered route")
	require.Equal(t, "", got[2].OrderedBy)
}

func TestOrderedByRefused(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ctx := context.Background()
	s := routes.NewStore(db.Pool, db.Schema)

	tests := []struct {
		name      string
		route     routes.Route
		wantErr   string
		wantIsKey bool // wraps ErrInvalidOrderedBy
	}{
		{"syntax error", routes.Route{OrderedBy: "$.order_id["},
			`route e -> k: invalid ordering key "$.order_id[": syntax error at end of jsonpath input: write a jsonpath that selects the key, e.g. '$.order_id'`, true},
		{"predicate", routes.Route{OrderedBy: "$.total > 1000"},
			`route e -> k: invalid ordering key "$.total > 1000" is a predicate, not a key: name the field that identifies the lane, e.g. '$.order_id'`, true},
		{"whole row", routes.Route{OrderedBy: "$"},
			`route e -> k: invalid ordering key "$" selects the whole row, which makes every event its own lane: name the field that identifies the lane, e.g. '$.order_id'`, true},
		{"variable", routes.Route{OrderedBy: "$x"},
			`route e -> k: invalid ordering key "$x": could not find jsonpath variable "x": write a jsonpath that selects the key, e.g. '$.order_id'`, true},
		{"too long", routes.Route{OrderedBy: "$." + strings.Repeat("a", routes.MaxOrderedByLength)},
			`route e -> k: ordering key is longer than 1024 bytes: write a jsonpath that selects the key, e.g. '$.order_id'`, false},
		{"NUL", routes.Route{OrderedBy: "$.a\x00"},
			`route e -> k: ordering key is not valid UTF-8 text: write a jsonpath that selects the key, e.g. '$.order_id'`, false},
		{"on failure unknown", routes.Route{OrderedBy: "$.a", OnFailure: "retry"},
			`route e -> k: on failure "retry" is not "continue" or "stop"`, false},
		{"stop without key", routes.Route{OnFailure: routes.OnFailureStop},
			`route e -> k: on failure "stop" applies to ordered routes only: give the ordering key too, e.g. '$.order_id'`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.route
			r.Event, r.Kind = "e", "k"
			err := s.Add(ctx, r)
			require.EqualError(t, err, tt.wantErr)
			require.Equal(t, tt.wantIsKey, errorsIs(err, routes.ErrInvalidOrderedBy))
		})
	}
	got, err := s.List(ctx)
	require.NoError(t, err)
	require.Empty(t, got, "no refused route was stored")

	// Keys a user may want: a field, a nested field, an array element,
	// a constant (one lane for every event).
	for _, ok := range []string{"$.order_id", "$.customer.id", "$.items[0].sku", `"all"`, "strict $.order_id", "$.a.b.c.size()"} {
		require.NoError(t, s.Add(ctx, routes.Route{Event: "e", Kind: "k", OrderedBy: ok}), ok)
	}
}

func errorsIs(err, target error) bool { return errors.Is(err, target) }
