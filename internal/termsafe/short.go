package termsafe

import (
	"fmt"
	"strconv"
	"unicode/utf8"
)

// Truncate cuts s to at most n bytes, on a rune boundary.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// QuoteShort quotes s for a message (Go syntax, so any byte is visible),
// cut to 64 bytes with the full length said.
func QuoteShort(s string) string {
	if len(s) <= 64 {
		return strconv.Quote(s)
	}
	return strconv.Quote(Truncate(s, 64)) + fmt.Sprintf("... (%d bytes)", len(s))
}

// Shorten keeps s to at most n characters (runes): a longer s keeps its
// first n-1 and ends in "…".
func Shorten(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:max(n-1, 0)]) + "…"
}
