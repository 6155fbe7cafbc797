package jobparams

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/notified/notified/jobs"
	"github.com/notified/notified/routes"
)

// TestAppendMetadataIsTheJSONEncoding: the metadata is
// byte for byte what encoding/json writes, whatever the ids and names hold.
func TestAppendMetadataIsTheJSONEncoding(t *testing.T) {
	t.Parallel()
	rs := []routes.Route{{Kind: "a", Queue: "default", Priority: 1, MaxAttempts: 25}, {Kind: "b", Queue: "mail", Priority: 2, MaxAttempts: 3}}
	for _, src := range []jobs.Source{
		{EventID: "42", EventName: "user.signed_up", Channel: "events"},
		{EventID: "0b9c6d5e-1f2a-4b3c-8d4e-5f6a7b8c9d0e", EventName: "order paid", Channel: "MyEvents"},
		{EventID: "42", EventName: `say "hi"\now`, Channel: "events"},
		{EventID: "42", EventName: "<script>&amp;", Channel: "ev-ents"},
		{EventID: "42", EventName: "café ☕", Channel: "événements"},
		{EventID: "42", EventName: "tab\there\x00", Channel: "events"},
		{EventID: "", EventName: "", Channel: ""},
		{EventID: "7", EventName: "signup", Channel: "events", ReplayID: 12},
	} {
		params, err := Append(nil, src, []byte(`{"id":42}`), rs, nil, nil)
		require.NoError(t, err)
		require.Len(t, params, len(rs))
		want, err := json.Marshal(map[string]jobs.Source{jobs.MetadataKey: src})
		require.NoError(t, err)
		for i, p := range params {
			require.Equal(t, string(want), string(p.InsertOpts.Metadata), "source %+v", src)
			require.Equal(t, rs[i].Queue, p.InsertOpts.Queue)
			require.Equal(t, rs[i].Priority, p.InsertOpts.Priority)
			require.Equal(t, rs[i].MaxAttempts, p.InsertOpts.MaxAttempts)
			require.Equal(t, rs[i].Kind, p.Args.Kind())
		}
	}
}

// TestLargeRowArgsMatchAppend: a large row's jobs get the routes and the
// metadata Append gives, and max attempts past a smallint are capped.
func TestLargeRowArgsMatchAppend(t *testing.T) {
	t.Parallel()
	src := jobs.Source{EventID: "42", EventName: "signup", Channel: "events"}
	rs := []routes.Route{{Kind: "a", Queue: "default", Priority: 1, MaxAttempts: 25}, {Kind: "b", Queue: "mail", Priority: 4, MaxAttempts: 1 << 20}}
	args, err := LargeRowArgs(src, rs, nil, nil)
	require.NoError(t, err)
	meta, err := Metadata(src)
	require.NoError(t, err)
	require.Equal(t, []any{"42", "42", "signup", "events", meta, []string{"a", "b"}, []string{"default", "mail"},
		[]int16{1, 4}, []int16{25, 1<<15 - 1}, []*string{nil, nil}, []string{"", ""}, []string{"", ""}, []bool{false, false}}, args)
}
