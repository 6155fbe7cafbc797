package publish

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"go/ast"
	"go/constant"
	"go/parser"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/notified/notified/internal/testdb"
)

// channelSeeds are channels as an application might pass them: the
// default, case, quotes, SQL, white space, unicode, names at 63 and 64
// bytes.
var channelSeeds = []string{
	"", "events", "Events", "my-events", "my events", "événements", "事件", "😀",
	`events"; drop table x; --`, "it's", `'); drop table x; --`, `"`, `back\slash`, "$$", "$1", "new\nline",
	strings.Repeat("c", 63), strings.Repeat("c", 64), strings.Repeat("€", 21), strings.Repeat("€", 21) + "c",
	"nul\x00byte", "\xff",
}

var schemaSeeds = []string{"", "notified", "Notified_Schema", "bad-schema", `x"; drop schema public cascade; --`, strings.Repeat("s", 47)}

func FuzzNew(f *testing.F) {
	for _, s := range schemaSeeds {
		for _, c := range channelSeeds {
			f.Add(s, c)
		}
	}
	f.Fuzz(func(t *testing.T, schema, channel string) {
		p, err := New(schema, channel)
		if err != nil {
			require.True(t, !schemaOK(schema) || len(channel) > 63 || strings.ContainsRune(channel, 0), "New(%q, %q): %v", schema, channel, err)
			return
		}
		require.True(t, schemaOK(schema), "schema %q accepted", schema)
		if channel == "" {
			channel = "events"
		}
		require.LessOrEqual(t, len(channel), 63, "Postgres would truncate channel %q", channel)
		require.Equal(t, channel, p.channel)

		// The channel and the id go as parameters: the SQL is the same for
		// every channel, with the outbox named by the schema alone.
		prefix := ""
		if schema != "" {
			prefix = `"` + strings.ReplaceAll(schema, `"`, `""`) + `".`
		}
		require.Equal(t, strings.ReplaceAll(announceSQL, "{schema}.", prefix), p.sql)
		require.ErrorContains(t, p.Notify(context.Background(), nil, ""), "event id is empty")
	})
}

// schemaOK is River's rule for schema names, written out; empty means the
// current schema.
func schemaOK(s string) bool {
	if len(s) > 46 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_'
		if !letter && (i == 0 || c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// TestNotifyCorpusChannels publishes on every channel of the FuzzNew seed
// corpus that New accepts and Postgres can hold: a listener that LISTENs on
// the channel quoted, as the bridge does, gets the id on exactly that
// channel, and the outbox row names it.
func TestNotifyCorpusChannels(t *testing.T) {
	t.Parallel()
	db := testdb.New(t, testdb.Options{NoEventsTable: true})
	ctx := context.Background()
	listener, err := pgx.Connect(ctx, db.URL)
	require.NoError(t, err)
	t.Cleanup(func() { _ = listener.Close(context.Background()) })

	channels := append([]string(nil), channelSeeds...)
	dir := filepath.Join("testdata", "fuzz", "FuzzNew")
	files, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, file := range files {
		data, err := os.ReadFile(filepath.Join(dir, file.Name()))
		require.NoError(t, err)
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		require.Len(t, lines, 3, file.Name())
		expr, err := parser.ParseExpr(lines[2])
		require.NoError(t, err)
		lit := expr.(*ast.CallExpr).Args[0].(*ast.BasicLit)
		channels = append(channels, constant.StringVal(constant.MakeFromLiteral(lit.Value, lit.Kind, 0)))
	}

	tried := 0
	for _, channel := range channels {
		p, err := New(db.Schema, channel)
		if err != nil || !utf8.ValidString(channel) || strings.ContainsRune(channel, 0) {
			continue
		}
		tried++
		_, err = listener.Exec(ctx, "LISTEN "+pgx.Identifier{p.channel}.Sanitize())
		require.NoError(t, err)
		b := make([]byte, 8)
		_, _ = rand.Read(b)
		id := "fz-" + hex.EncodeToString(b)
		require.NoError(t, p.Notify(ctx, db.Pool, id))
		for {
			n := testdb.NextNotification(t, listener)
			if n.Payload == id {
				require.Equal(t, p.channel, n.Channel, "channel %q", channel)
				break
			}
		}
		_, err = listener.Exec(ctx, "UNLISTEN *")
		require.NoError(t, err)
		var got string
		require.NoError(t, db.Pool.QueryRow(ctx, "SELECT channel FROM "+pgx.Identifier{db.Schema, "notified_outbox"}.Sanitize()+" WHERE event_id = $1", id).Scan(&got))
		require.Equal(t, p.channel, got)
	}
	require.Greater(t, tried, 10)
}
