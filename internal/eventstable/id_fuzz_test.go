package eventstable_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/big"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/notified/notified/internal/eventstable"
	"github.com/notified/notified/internal/fuzzcorpus"
	"github.com/notified/notified/internal/termsafe"
	"github.com/notified/notified/internal/testdb"
)

// idType is an id column type the bridge supports, as pg_type and
// format_type spell it, with its range when it is an integer.
type idType struct {
	typname, formatted string
	integer            bool
	min, max           int64
}

var idTypes = []idType{
	{"int2", "smallint", true, -1 << 15, 1<<15 - 1},
	{"int4", "integer", true, -1 << 31, 1<<31 - 1},
	{"int8", "bigint", true, -1 << 63, 1<<63 - 1},
	{typname: "uuid", formatted: "uuid"},
	{typname: "text", formatted: "text"},
	{typname: "varchar", formatted: "character varying"},
}

// idPayloadSeeds are notification payloads worth trying against every id
// type: numbers at and past each range, spellings Postgres accepts and the
// bridge does not, uuids in several forms, SQL-looking and log-breaking text.
var idPayloadSeeds = []string{
	"abc", "", "0", "-0", "-5", "+7", "007", "1.5", "1e3", " 42", "42 ", "0x1F", "1_000", "١٢",
	"32767", "32768", "-32768", "-32769",
	"2147483647", "2147483648", "-2147483648", "-2147483649",
	"9223372036854775807", "9223372036854775808", "-9223372036854775808", "-9223372036854775809",
	"99999999999999999999",
	"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
	"A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11",
	"{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}",
	"a0eebc999c0b4ef8bb6d6bb9bd380a11",
	"{A0EEBC999C0B4EF8BB6D6BB9BD380A11}",
	"a0eebc99-9c0b4ef8-bb6d6bb9-bd380a11",
	"{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
	"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1g",
	"a0eebc99+9c0b-4ef8-bb6d-6bb9bd380a11",
	"00000000-0000-0000-0000-000000000000",
	"1; DROP TABLE events; --", "' OR '1'='1", `42"); --`, "$$", "$notified$",
	"a\nb", "x\ty", "\x1b[31mred", "\u202eevil", "line\u2028sep", "é", "\xff\xfe", "nul\x00byte",
}

func FuzzParseID(f *testing.F) {
	for i := range idTypes {
		for _, p := range idPayloadSeeds {
			f.Add(uint8(i), p)
		}
	}
	f.Fuzz(func(t *testing.T, kind uint8, payload string) {
		typ := idTypes[int(kind)%len(idTypes)]
		got, err := parseID(typ.typname, typ.formatted, payload)

		want, ok := referenceID(typ, payload)
		if err != nil {
			require.False(t, ok, "%s %q refused (%v), the reference accepts it as %q", typ.typname, payload, err, want)
			requireIDError(t, typ, payload, err)
			return
		}
		require.True(t, ok, "%s %q accepted as %q, the reference refuses it", typ.typname, payload, got)
		require.Equal(t, want, got, "%s %q", typ.typname, payload)
		require.LessOrEqual(t, len(got), eventstable.MaxIDLength)
		switch {
		case typ.integer:
			n, err := strconv.ParseInt(got, 10, 64)
			require.NoError(t, err)
			require.True(t, n >= typ.min && n <= typ.max, "%s %q -> %d", typ.typname, payload, n)
			require.Equal(t, strconv.FormatInt(n, 10), got)
		case typ.typname == "uuid":
			require.Regexp(t, uuidRE, got)
		default:
			require.Equal(t, payload, got)
		}

		// The canonical form is a fixed point.
		again, err := parseID(typ.typname, typ.formatted, got)
		require.NoError(t, err, "%s canonical %q of %q", typ.typname, got, payload)
		require.Equal(t, got, again, "%s canonical %q of %q", typ.typname, got, payload)
	})
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// referenceID is what parseID should answer, written independently of it:
// the canonical text Postgres gives for id::text, or false.
func referenceID(typ idType, payload string) (string, bool) {
	if len(payload) > eventstable.MaxIDLength {
		return "", false
	}
	switch {
	case typ.integer:
		digits := strings.TrimLeft(payload, "+-")
		if len(payload)-len(digits) > 1 || digits == "" || strings.Trim(digits, "0123456789") != "" {
			return "", false
		}
		n, ok := new(big.Int).SetString(payload, 10)
		if !ok || n.Cmp(big.NewInt(typ.min)) < 0 || n.Cmp(big.NewInt(typ.max)) > 0 {
			return "", false
		}
		return n.String(), true
	case typ.typname == "uuid":
		s := payload
		if len(s) >= 2 && s[0] == '{' && s[len(s)-1] == '}' {
			s = s[1 : len(s)-1]
		}
		if len(s) == 36 {
			for _, i := range []int{8, 13, 18, 23} {
				if s[i] != '-' {
					return "", false
				}
			}
			s = strings.ReplaceAll(s, "-", "")
		}
		if len(s) != 32 || strings.Trim(strings.ToLower(s), "0123456789abcdef") != "" {
			return "", false
		}
		s = strings.ToLower(s)
		return s[0:8] + "-" + s[8:12] + "-" + s[12:16] + "-" + s[16:20] + "-" + s[20:], true
	default:
		return payload, payload != ""
	}
}

// requireIDError checks the error for a refused payload: one oneLinePrintable line
// of bounded length that names the payload quoted and, past 64 bytes,
// shortened.
func requireIDError(t *testing.T, typ idType, payload string, err error) {
	t.Helper()
	msg := err.Error()
	require.True(t, fuzzcorpus.OneLinePrintable(msg), "error for %s %q is not one oneLinePrintable line: %q", typ.typname, payload, msg)
	require.LessOrEqual(t, len(msg), 400, "error for %s %q is long: %q", typ.typname, payload, msg)
	switch {
	case len(payload) > eventstable.MaxIDLength:
		require.Contains(t, msg, fmt.Sprintf("payload is %d bytes", len(payload)))
	case payload == "" && !typ.integer && typ.typname != "uuid":
		require.Equal(t, "payload is empty", msg)
	default:
		require.Contains(t, msg, quotedShort(payload), "%s %q", typ.typname, payload)
	}
}

// quotedShort is how messages should show a payload: Go-quoted, cut at a
// rune boundary to at most 64 bytes and then followed by its length.
func quotedShort(s string) string {
	if len(s) <= 64 {
		return strconv.Quote(s)
	}
	n := 64
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return strconv.Quote(s[:n]) + fmt.Sprintf("... (%d bytes)", len(s))
}

func FuzzRecordKey(f *testing.F) {
	for _, p := range idPayloadSeeds {
		f.Add(p)
	}
	f.Add(strings.Repeat("x", eventstable.MaxIDLength))
	f.Add(strings.Repeat("é", 513))
	f.Fuzz(func(t *testing.T, payload string) {
		key := eventstable.RecordKey(payload)
		require.Equal(t, key, eventstable.RecordKey(payload), "not deterministic")
		require.LessOrEqual(t, len(key), eventstable.MaxIDLength)
		if len(payload) <= eventstable.MaxIDLength {
			require.Equal(t, payload, key)
		} else {
			sum := sha256.Sum256([]byte(payload))
			require.True(t, strings.HasPrefix(payload, strings.TrimSuffix(key, "...sha256:"+hex.EncodeToString(sum[:]))))
			require.True(t, strings.HasSuffix(key, "...sha256:"+hex.EncodeToString(sum[:])), "key %q", key)
			require.LessOrEqual(t, len(key), 64+len("...sha256:")+64)
		}
		if utf8.ValidString(payload) {
			require.True(t, utf8.ValidString(key), "key %q of valid UTF-8 is not", key)
		}
		// A different payload, however long, has a different key.
		require.NotEqual(t, key, eventstable.RecordKey(payload+"x"))
	})
}

func FuzzTruncate(f *testing.F) {
	for _, p := range idPayloadSeeds {
		f.Add(p, uint16(3))
	}
	f.Add(strings.Repeat("a", 63)+"é", uint16(64))
	f.Add(strings.Repeat("a", 62)+"€x", uint16(63))
	f.Add(strings.Repeat("a", 61)+"😀x", uint16(64))
	f.Add("😀😀", uint16(0))
	f.Fuzz(func(t *testing.T, s string, n16 uint16) {
		n := int(n16) % (len(s) + 2)
		got := termsafe.Truncate(s, n)
		require.True(t, strings.HasPrefix(s, got))
		require.LessOrEqual(t, len(got), n)
		if len(s) <= n {
			require.Equal(t, s, got)
		} else if len(got) > 0 {
			require.True(t, utf8.RuneStart(s[len(got)]), "cut %q at %d inside a rune", s, len(got))
		}
		if utf8.ValidString(s) {
			require.True(t, utf8.ValidString(got))
			if len(got) < len(s) {
				// Nothing more fits: the next rune would pass n.
				_, size := utf8.DecodeRuneInString(s[len(got):])
				require.Greater(t, len(got)+size, n, "termsafe.Truncate(%q, %d) = %q stops early", s, n, got)
			}
		}

		q := termsafe.QuoteShort(s)
		require.Equal(t, quotedShort(s), q)
		require.True(t, fuzzcorpus.OneLinePrintable(q), "%q", q)
		require.LessOrEqual(t, len(q), 2+4*64+len("... ( bytes)")+20)
	})
}

// TestParseIDMatchesPostgres checks every id the seed corpus makes the
// bridge accept against Postgres itself: the bridge records an id as its
// canonical text, which must be the text Postgres gives for id::text, or a
// notification from the capture trigger and a hand-sent one would be two
// events.
func TestParseIDMatchesPostgres(t *testing.T) {
	t.Parallel()
	pool := testdb.Pool(t)
	type seed struct {
		kind    uint8
		payload string
	}
	var seeds []seed
	for i := range idTypes {
		for _, p := range idPayloadSeeds {
			seeds = append(seeds, seed{uint8(i), p})
		}
	}
	for _, vals := range fuzzcorpus.Read(t, "FuzzParseID") {
		seeds = append(seeds, seed{vals[0].(uint8), vals[1].(string)})
	}
	checked := 0
	for _, s := range seeds {
		typ := idTypes[int(s.kind)%len(idTypes)]
		got, err := parseID(typ.typname, typ.formatted, s.payload)
		if err != nil {
			continue
		}
		if !fuzzcorpus.PGStorable(s.payload) {
			// Accepted for a text column although no text value can hold
			// it; a notification's payload never carries such bytes.
			continue
		}
		var pg string
		err = pool.QueryRow(context.Background(), "SELECT $1::text::"+typ.typname+"::text", s.payload).Scan(&pg)
		require.NoError(t, err, "bridge accepts %q as %s %q, Postgres refuses it", s.payload, typ.typname, got)
		require.Equal(t, pg, got, "%s %q", typ.typname, s.payload)
		checked++
	}
	require.Greater(t, checked, 30)
}

// parseID parses payload as an id of a column of type typname spelled
// formatted.
func parseID(typname, formatted, payload string) (string, error) {
	t, err := eventstable.ForIDType(typname, formatted)
	if err != nil {
		return "", err
	}
	return t.ParseID(payload)
}
