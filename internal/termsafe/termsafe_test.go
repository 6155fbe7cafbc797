package termsafe_test

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
	"unsafe"

	"github.com/stretchr/testify/require"

	"github.com/notified/notified/internal/termsafe"
)

func TestStringEscapesWhatATerminalWouldActOn(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"user_signed_up", "user_signed_up"},
		{"\x1b]0;PWNED\x07\x1b[2J", `\x1b]0;PWNED\x07\x1b[2J`},
		{"a\tb\nc\rd", `a\tb\nc\rd`},
		{"nul\x00 bs\x08 del\x7f", `nul\x00 bs\x08 del\x7f`},
		{"csi\u009b31m nel\u0085 pad\u0080", `csi\u009b31m nel\u0085 pad\u0080`},
		{"invoice_\u202egpj.exe", `invoice_\u202egpj.exe`},
		{"\u2066isolated\u2069 \u200emark\u200f \u061c", `\u2066isolated\u2069 \u200emark\u200f \u061c`},
		{"line\u2028para\u2029", `line\u2028para\u2029`},
		{"bad \xff\xfe utf-8 \xe2\x82", `bad \xff\xfe utf-8 \xe2\x82`},
		{"surrogate \xed\xa0\x80", `surrogate \xed\xa0\x80`},
		// Ordinary text stays as it is.
		{"événement 日本 😀 👨\u200d👩\u200d👧 \ufffd", "événement 日本 😀 👨\u200d👩\u200d👧 \ufffd"},
		{`C:\path\x1b "quoted" it's`, `C:\path\x1b "quoted" it's`},
		{"\u00a0nbsp \u00e9 \u2027 \u202f \u2070", "\u00a0nbsp \u00e9 \u2027 \u202f \u2070"},
	} {
		require.Equal(t, tc.want, termsafe.String(tc.in), "%q", tc.in)
	}
}

func TestStringReturnsSafeTextUncopied(t *testing.T) {
	t.Parallel()
	s := strings.Repeat("événement 日本 😀 ", 10)
	require.Same(t, unsafe.StringData(s), unsafe.StringData(termsafe.String(s)))
}

func ExampleString() {
	name := "\x1b]0;PWNED\x07\x1b[2Jorder_placed"
	fmt.Println("event 42:", termsafe.String(name))
	fmt.Println(termsafe.String("résumé envoyé 📨"))
	// Output:
	// event 42: \x1b]0;PWNED\x07\x1b[2Jorder_placed
	// résumé envoyé 📨
}

func TestOneLineFoldsWhiteSpaceOnly(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"   ", ""},
		{"send mail: 451 4.7.1 greylisted", "send mail: 451 4.7.1 greylisted"},
		{"  call webhook:\n\tanswered 503\r\n  busy  ", "call webhook: answered 503 busy"},
		{"a\u2028b\u00a0c\u0085d", "a b c d"},
		// Not white space: left for String to escape.
		{"a\x1b[2J  b\x00c", "a\x1b[2J b\x00c"},
	} {
		require.Equal(t, tc.want, termsafe.OneLine(tc.in), "%q", tc.in)
	}
}

func ExampleOneLine() {
	err := "call webhook for event 7:\n\tanswered 503:\n\t\x1b[31mbusy\x1b[0m"
	fmt.Println("job 12:", termsafe.String(termsafe.OneLine(err)))
	// Output:
	// job 12: call webhook for event 7: answered 503: \x1b[31mbusy\x1b[0m
}

// mustEscape is the reference for what must not reach a terminal, from Go's
// Unicode tables: control characters (C0, DEL, C1), bidi controls, and the
// line and paragraph separators.
func mustEscape(r rune) bool {
	return unicode.Is(unicode.Cc, r) || unicode.Is(unicode.Bidi_Control, r) || r == '\u2028' || r == '\u2029'
}

// unescape reads String's escapes back: exact for a string without a
// backslash.
func unescape(t *testing.T, s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			continue
		}
		require.Less(t, i+1, len(s), "dangling backslash in %q", s)
		switch s[i+1] {
		case 't', 'n', 'r':
			b.WriteByte(map[byte]byte{'t': '\t', 'n': '\n', 'r': '\r'}[s[i+1]])
			i++
		case 'x':
			v, err := strconv.ParseUint(s[i+2:i+4], 16, 8)
			require.NoError(t, err, "%q", s)
			b.WriteByte(byte(v))
			i += 3
		case 'u':
			v, err := strconv.ParseUint(s[i+2:i+6], 16, 32)
			require.NoError(t, err, "%q", s)
			b.WriteRune(rune(v))
			i += 5
		default:
			t.Fatalf("unknown escape in %q", s)
		}
	}
	return b.String()
}

func FuzzString(f *testing.F) {
	for _, s := range []string{
		"", "events", "\x1b]0;PWNED\x07\x1b[2J", "\x1b[31mred\x1b[0m", "a\tb\nc\rd\r\n", "\x00\x7f\x9b",
		"\u009b31m", "\u0085", "\u202eevil", "\u2066\u2069\u200e\u200f\u061c", "\u2028\u2029",
		"\xff", "\xe2\x82", "\xed\xa0\x80", "\xf4\x90\x80\x80", "é日本😀", "👨\u200d👩\u200d👧", "\ufffd",
		`\x1b`, `back\slash`, "\u00ad\u200b\ufeff",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := termsafe.String(s)
		require.True(t, utf8.ValidString(out), "%q -> %q", s, out)
		for _, r := range out {
			require.False(t, mustEscape(r), "%q -> %q keeps %U", s, out, r)
		}
		require.Equal(t, out, termsafe.String(out), "not idempotent on %q", s)

		clean := utf8.ValidString(s)
		for _, r := range s {
			clean = clean && !mustEscape(r)
		}
		if clean {
			require.Equal(t, s, out, "%q has nothing to escape", s)
		}
		if !strings.Contains(s, `\`) {
			require.Equal(t, s, unescape(t, out), "%q -> %q does not read back", s, out)
		}
	})
}

func TestShortenCountsCharactersNotBytes(t *testing.T) {
	t.Parallel()
	require.Equal(t, "héllo", termsafe.Shorten("héllo", 5))
	require.Equal(t, "héll…", termsafe.Shorten("héllo!", 5))
	require.Equal(t, "☕☕…", termsafe.Shorten("☕☕☕☕", 3))
	require.Equal(t, "…", termsafe.Shorten("abc", 1))
}

func TestTruncateCutsOnARuneBoundary(t *testing.T) {
	t.Parallel()
	require.Equal(t, "ab", termsafe.Truncate("ab€", 4))
	require.Equal(t, "ab€", termsafe.Truncate("ab€", 5))
	require.Equal(t, `"ab"`, termsafe.QuoteShort("ab"))
}

func TestReplaceOutsideQuotes(t *testing.T) {
	re := regexp.MustCompile(`\bBatchSize\b`)
	up := func(string) string { return "--batch-size" }
	for in, want := range map[string]string{
		`BatchSize 0 is out of range`:                      `--batch-size 0 is out of range`,
		`BatchSize "BatchSize" is not a number: BatchSize`: `--batch-size "BatchSize" is not a number: --batch-size`,
		`value "a \"BatchSize\" b" for BatchSize`:          `value "a \"BatchSize\" b" for --batch-size`,
		`unterminated "BatchSize`:                          `unterminated "BatchSize`,
		`MaxBatchSize and BatchSizes are other words`:      `MaxBatchSize and BatchSizes are other words`,
		``: ``,
	} {
		require.Equal(t, want, termsafe.ReplaceOutsideQuotes(in, re, up), in)
	}
}
