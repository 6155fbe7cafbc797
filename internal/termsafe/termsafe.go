// Package termsafe escapes text for an operator's terminal.
//
// Event names, handler kinds, job errors and the other text the CLI shows
// were written by producers, workers and whoever else can write to the
// database. Printed as they are, an escape sequence in them can retitle or
// clear the terminal, move the cursor over what was printed before, or hide
// what follows; a carriage return or a bidi override can make a line read
// differently from what it holds; a tab or a newline breaks a table. String
// makes such characters visible instead, at the point of printing. Stored
// data is left as it is: JSON output, which escapes on its own, shows the
// exact value.
//
// OneLine folds a multi-line message onto one line, for a table row or a log
// line; it escapes nothing, so its result still goes through String.
package termsafe

import (
	"regexp"
	"strings"
	"unicode/utf8"
)

// String returns s with every character a terminal would act on rather
// than show written as an escape, the way Go spells it:
//
//   - tab, newline and carriage return as \t, \n and \r;
//   - the other C0 controls (ESC, BEL, NUL, ...) and DEL as \x1b, \x07,
//     \x00, \x7f;
//   - the C1 controls U+0080 to U+009F, which some terminals read as ESC
//     sequences (U+009B is CSI), as \u009b;
//   - the bidi controls that reorder what is shown (U+202A to U+202E,
//     U+2066 to U+2069, and the marks U+200E, U+200F, U+061C) and the line
//     and paragraph separators U+2028 and U+2029, as \u202e and the like;
//   - each byte that is not part of valid UTF-8 as \xff and the like.
//
// Everything else, ordinary Unicode included (é, 日本, emoji and their
// joiners), is kept. A backslash is kept too, so that Windows paths and
// regular expressions in error messages read as written: the result may be
// ambiguous (a literal `\x1b` looks like an escaped ESC), never harmful.
// What String returns holds nothing it would escape, so String(String(s))
// is String(s). A string with nothing to escape is returned as it is,
// without copying.
func String(s string) string {
	i := firstUnsafe(s)
	if i < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	b.WriteString(s[:i])
	for i < len(s) {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '\t':
				b.WriteString(`\t`)
			case c == '\n':
				b.WriteString(`\n`)
			case c == '\r':
				b.WriteString(`\r`)
			case c < 0x20 || c == 0x7f:
				writeHex(&b, `\x`, uint32(c), 2)
			default:
				b.WriteByte(c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			writeHex(&b, `\x`, uint32(c), 2)
		case unsafeRune(r):
			writeHex(&b, `\u`, uint32(r), 4)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// OneLine returns s with each run of white space replaced by one space and
// none left at either end, so that a message of several lines (an error
// wrapping a server's reply, a stack) reads on one line. White space is what
// strings.Fields splits on: spaces, tabs, newlines and carriage returns, and
// Unicode's spaces and its line and paragraph separators. Nothing else is
// changed, escape sequences included: print the result through String.
func OneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// firstUnsafe returns the index of the first byte of s that String
// escapes, or -1.
func firstUnsafe(s string) int {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c < 0x20 || c == 0x7f {
				return i
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || unsafeRune(r) {
			return i
		}
		i += size
	}
	return -1
}

// unsafeRune reports whether String escapes r, a non-ASCII rune.
func unsafeRune(r rune) bool {
	switch {
	case r >= 0x80 && r <= 0x9f: // C1 controls
		return true
	case r >= 0x202a && r <= 0x202e: // LRE, RLE, PDF, LRO, RLO
		return true
	case r >= 0x2066 && r <= 0x2069: // LRI, RLI, FSI, PDI
		return true
	}
	switch r {
	case 0x200e, 0x200f, 0x061c: // LRM, RLM, ALM
		return true
	case 0x2028, 0x2029: // line and paragraph separators
		return true
	}
	return false
}

const hexDigits = "0123456789abcdef"

func writeHex(b *strings.Builder, prefix string, v uint32, digits int) {
	b.WriteString(prefix)
	for shift := 4 * (digits - 1); shift >= 0; shift -= 4 {
		b.WriteByte(hexDigits[v>>uint(shift)&0xf])
	}
}

// ReplaceOutsideQuotes replaces what re matches in msg with what replace
// returns for it, except inside double-quoted text (as strconv.Quote and %q
// write it, with its backslash escapes): there, in error messages, are the
// user's values, which must come out as they went in. An unterminated
// quote runs to the end of msg.
func ReplaceOutsideQuotes(msg string, re *regexp.Regexp, replace func(string) string) string {
	var b strings.Builder
	start, inQuote := 0, false
	for i := 0; i < len(msg); i++ {
		switch {
		case inQuote && msg[i] == '\\':
			i++ // an escaped character, a quote included
		case msg[i] == '"' && !inQuote:
			b.WriteString(re.ReplaceAllStringFunc(msg[start:i], replace))
			start, inQuote = i, true
		case msg[i] == '"':
			b.WriteString(msg[start : i+1])
			start, inQuote = i+1, false
		}
	}
	if inQuote {
		b.WriteString(msg[start:])
	} else {
		b.WriteString(re.ReplaceAllStringFunc(msg[start:], replace))
	}
	return b.String()
}
