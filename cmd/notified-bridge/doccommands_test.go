package main

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/urfave/cli/v2"
)

// docCommand is one notified-bridge command line found in a document.
type docCommand struct {
	file string
	line int
	args []string // after the program's name
}

// invocation matches a command line as the docs write it, from its program
// name: "notified-bridge ...", "$ notified-bridge ...", "go run
// ./cmd/notified-bridge ...", possibly after environment assignments.
var invocation = regexp.MustCompile(`^(?:\$ )?(?:[A-Z_]+=\S+ )*(?:notified-bridge|go run \./cmd/notified-bridge)(?: (.*))?$`)

// docCommands returns the command lines in the code blocks of the README
// and docs/*.md, with backslash continuations joined and what follows a
// comment, a pipe, a redirection or a command separator cut off.
func docCommands(t *testing.T) []docCommand {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(docsDir, "*.md"))
	require.NoError(t, err)
	files = append(files, readmePath)
	var cmds []docCommand
	for _, file := range files {
		f, err := os.Open(file)
		require.NoError(t, err)
		sc := bufio.NewScanner(f)
		inBlock, n, pending, start := false, 0, "", 0
		for sc.Scan() {
			n++
			line := strings.TrimSpace(sc.Text())
			if strings.HasPrefix(line, "```") {
				inBlock = !inBlock
				continue
			}
			if !inBlock {
				continue
			}
			if pending != "" {
				line = pending + " " + line
			} else {
				start = n
			}
			if strings.HasSuffix(line, `\`) {
				pending = strings.TrimSuffix(line, `\`)
				continue
			}
			pending = ""
			m := invocation.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			cmds = append(cmds, docCommand{file: filepath.Base(file), line: start, args: shellWords(m[1])})
		}
		require.NoError(t, sc.Err())
		require.NoError(t, f.Close())
	}
	return cmds
}

// shellWords splits s as a shell would, for the docs' simple commands:
// quotes group, and an unquoted #, |, >, <, ; or && ends the command.
func shellWords(s string) []string {
	var words []string
	var cur strings.Builder
	inWord := false
	var quote rune
	flush := func() {
		if inWord {
			words = append(words, cur.String())
		}
		cur.Reset()
		inWord = false
	}
	rs := []rune(s)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == ' ' || r == '\t':
			flush()
		case strings.ContainsRune("#|><;&", r) && !inWord:
			flush()
			return words
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	flush()
	return words
}

// docFlags maps the names, without dashes, of flags to whether the flag
// takes a value.
func docFlags(flags []cli.Flag) map[string]bool {
	names := map[string]bool{"help": false, "h": false, "version": false, "v": false}
	for _, f := range flags {
		_, isBool := f.(*cli.BoolFlag)
		for _, n := range f.Names() {
			names[n] = !isBool
		}
	}
	return names
}

// TestDocsCommandsExist: every notified-bridge command line in the README
// and the docs names a command that exists, with flags that command (or
// the app, before the command) has, so that a renamed command or flag
// fails here rather than for a reader.
func TestDocsCommandsExist(t *testing.T) {
	t.Parallel()
	app := newApp()
	cmds := docCommands(t)
	require.Greater(t, len(cmds), 50, "the docs' command lines were not found: check the pattern")
	for _, dc := range cmds {
		where := dc.file + ":" + strconv.Itoa(dc.line) + ": notified-bridge " + strings.Join(dc.args, " ")
		allowed := docFlags(app.Flags)
		var cmd *cli.Command
		subs := app.Commands
		for i := 0; i < len(dc.args); i++ {
			a := dc.args[i]
			if strings.HasPrefix(a, "-") {
				name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
				takesValue, ok := allowed[name]
				require.True(t, ok, "%s: no flag --%s here", where, name)
				if takesValue && !hasValue {
					i++ // its value
				}
				continue
			}
			if strings.ContainsAny(a, "<>[]") || strings.HasPrefix(a, "$") {
				break // a placeholder: the rest is the reader's
			}
			var next *cli.Command
			for _, c := range subs {
				if c.HasName(a) {
					next = c
				}
			}
			if next == nil {
				if cmd == nil {
					require.Failf(t, "unknown command", "%s: no command %q", where, a)
				}
				// An argument: flags after it are the command's too.
				continue
			}
			cmd, subs = next, next.Subcommands
			allowed = docFlags(append(append([]cli.Flag{}, app.Flags...), cmd.Flags...))
		}
	}
}
