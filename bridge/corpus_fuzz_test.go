package bridge_test

import (
	"strings"
	"unicode/utf8"
)

// pgStorable reports whether Postgres can store s as text or a name at all:
// valid UTF-8 (the test database's encoding) without NUL bytes.
func pgStorable(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}
