// Package fuzzcorpus reads the committed seed corpora of the fuzz targets,
// so that tests against a real Postgres go over the same hostile inputs, and
// holds the checks several targets share.
package fuzzcorpus

import (
	"go/ast"
	"go/constant"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

// Read returns the values of every file in testdata/fuzz/<name>, the
// seed corpus `go test` runs for the fuzz target name ("go test fuzz v1"
// files holding string, bool and integer values), so that tests against a
// real Postgres can go over the same hostile inputs as the fuzz target.
func Read(t testing.TB, name string) [][]any {
	t.Helper()
	dir := filepath.Join("testdata", "fuzz", name)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var out [][]any
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		require.NoError(t, err)
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		require.Equal(t, "go test fuzz v1", lines[0], e.Name())
		var vals []any
		for _, line := range lines[1:] {
			v, err := value(line)
			require.NoError(t, err, "%s: %s", e.Name(), line)
			vals = append(vals, v)
		}
		out = append(out, vals)
	}
	return out
}

// value reads one line of a corpus file: string("..."), bool(true),
// byte('x'), uint8(3), int(-1) and the like.
func value(line string) (any, error) {
	expr, err := parser.ParseExpr(line)
	if err != nil {
		return nil, err
	}
	call, ok := expr.(*ast.CallExpr)
	if !ok || len(call.Args) != 1 {
		return nil, os.ErrInvalid
	}
	fn, _ := call.Fun.(*ast.Ident)
	if fn == nil {
		return nil, os.ErrInvalid
	}
	arg := call.Args[0]
	if id, ok := arg.(*ast.Ident); ok && fn.Name == "bool" {
		return id.Name == "true", nil
	}
	neg := false
	if u, ok := arg.(*ast.UnaryExpr); ok && u.Op == token.SUB {
		neg, arg = true, u.X
	}
	lit, ok := arg.(*ast.BasicLit)
	if !ok {
		return nil, os.ErrInvalid
	}
	c := constant.MakeFromLiteral(lit.Value, lit.Kind, 0)
	if fn.Name == "string" {
		return constant.StringVal(c), nil
	}
	n, _ := constant.Int64Val(c)
	if neg {
		n = -n
	}
	switch fn.Name {
	case "byte", "uint8":
		return uint8(n), nil
	case "int":
		return int(n), nil
	case "uint16":
		return uint16(n), nil
	}
	return nil, os.ErrInvalid
}

// SplitQuotedIdent reads what pgx.Identifier.Sanitize writes, as Postgres'
// lexer does: double-quoted parts ("" for a quote inside) joined by dots. It
// returns the parts, or false if s is anything else.
func SplitQuotedIdent(s string) ([]string, bool) {
	var parts []string
	for {
		if !strings.HasPrefix(s, `"`) {
			return nil, false
		}
		s = s[1:]
		var b strings.Builder
		for {
			i := strings.IndexByte(s, '"')
			if i < 0 {
				return nil, false
			}
			b.WriteString(s[:i])
			s = s[i+1:]
			if strings.HasPrefix(s, `"`) {
				b.WriteByte('"')
				s = s[1:]
				continue
			}
			break
		}
		parts = append(parts, b.String())
		if s == "" {
			return parts, true
		}
		if s[0] != '.' {
			return nil, false
		}
		s = s[1:]
	}
}

// OneLinePrintable reports whether a message is safe on one log line: valid
// UTF-8 with only printable characters (no newline, no terminal escape, no line
// separator or bidi control).
func OneLinePrintable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// PGStorable reports whether Postgres can store s as text or a name at all:
// valid UTF-8 (the test database's encoding) without NUL bytes.
func PGStorable(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}
