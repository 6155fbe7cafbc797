package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/notified/notified/routes"

	"github.com/stretchr/testify/require"
	"github.com/urfave/cli/v2"
)

var updateDocs = flag.Bool("update-docs", false, "rewrite docs/configuration.md from the CLI definition")

const (
	configDocPath = "../../docs/configuration.md"
	readmePath    = "../../README.md"
	docsDir       = "../../docs"
	// configDocMarker separates the hand-written introduction of
	// docs/configuration.md, which the test keeps, from the generated
	// reference below it.
	configDocMarker = "<!-- generated below by `go test ./cmd/notified-bridge -run TestConfigurationDocIsCurrent -update-docs`: do not edit -->"
	updateDocsHint  = "run `go test ./cmd/notified-bridge -run TestConfigurationDocIsCurrent -update-docs` and commit docs/configuration.md"
)

// TestConfigurationDocIsCurrent checks that docs/configuration.md is the
// rendering of the CLI definition, and that the environment variables the
// README and the docs name are ones the CLI reads. With -update-docs it
// rewrites the generated part of the file instead.
func TestConfigurationDocIsCurrent(t *testing.T) {
	t.Parallel()

	// The subtests run one after the other: with -update-docs the first
	// one writes a file the last one reads.
	t.Run("configuration.md", func(t *testing.T) {
		current, err := os.ReadFile(configDocPath)
		if errors.Is(err, fs.ErrNotExist) && *updateDocs {
			current = []byte("# Configuration reference\n\n" + configDocMarker + "\n")
		} else {
			require.NoError(t, err)
		}
		intro, _, ok := strings.Cut(string(current), configDocMarker)
		require.True(t, ok, "docs/configuration.md lacks the marker line %q above the generated reference: put it back below the introduction, then %s",
			configDocMarker, updateDocsHint)
		want := intro + configDocMarker + "\n\n" + renderConfigDoc(newApp())
		if *updateDocs {
			require.NoError(t, os.WriteFile(configDocPath, []byte(want), 0o644))
			return
		}
		if string(current) != want {
			line, have, wantLine := firstDifference(string(current), want)
			t.Fatalf("docs/configuration.md is not the rendering of the CLI definition: %s\nfirst difference, line %d:\n  file: %s\n  CLI:  %s",
				updateDocsHint, line, have, wantLine)
		}
	})

	t.Run("README configuration table", func(t *testing.T) {
		readme, err := os.ReadFile(readmePath)
		require.NoError(t, err)
		rows := readmeConfigRows(t, string(readme))
		require.NotEmpty(t, rows, "README.md's ## Configuration section has no table rows naming environment variables")
		envs := envVarFlags(newApp())
		for _, row := range rows {
			for _, env := range row.envs {
				names, ok := envs[env]
				require.True(t, ok, "README.md's configuration table names %s, which no flag of notified-bridge reads", env)
				if len(row.flags) == 0 {
					continue
				}
				found := false
				for _, f := range row.flags {
					found = found || names[f]
				}
				require.True(t, found, "README.md's configuration table pairs %s with %s, but the CLI reads it for %s",
					env, strings.Join(row.flags, ", "), strings.Join(sortedKeys(names), ", "))
			}
		}
	})

	t.Run("env vars named in docs", func(t *testing.T) {
		envs := envVarFlags(newApp())
		files, err := filepath.Glob(filepath.Join(docsDir, "*.md"))
		require.NoError(t, err)
		files = append(files, readmePath)
		re := regexp.MustCompile(`\bNOTIFIED_[A-Z0-9_]*[A-Z0-9]\b`)
		for _, file := range files {
			text, err := os.ReadFile(file)
			require.NoError(t, err)
			for _, env := range re.FindAllString(string(text), -1) {
				if strings.HasPrefix(env, routes.SecretEnvPrefix) {
					continue // a webhook secret's variable, named by a route, read by the worker
				}
				_, ok := envs[env]
				require.True(t, ok, "%s names %s, which no flag of notified-bridge reads", filepath.Base(file), env)
			}
		}
	})
}

// renderConfigDoc renders the CLI definition as markdown: the global flags,
// then every command and its subcommands, in the order the CLI lists them,
// each with its usage and a table of flags.
func renderConfigDoc(app *cli.App) string {
	var b bytes.Buffer
	b.WriteString("## Global flags\n\n")
	fmt.Fprintf(&b, "Global flags may go before or after the command: `%s [global flags] COMMAND [flags] [arguments]`.\n\n", app.Name)
	writeFlagTable(&b, app.Flags)
	var walk func(path []string, cmds []*cli.Command)
	walk = func(path []string, cmds []*cli.Command) {
		for _, cmd := range cmds {
			if cmd.Hidden {
				continue
			}
			full := append(append([]string(nil), path...), cmd.Name)
			renderCommand(&b, app.Name, full, cmd)
			walk(full, cmd.Subcommands)
		}
	}
	walk(nil, app.Commands)
	return b.String()
}

func renderCommand(b *bytes.Buffer, appName string, path []string, cmd *cli.Command) {
	name := strings.Join(path, " ")
	fmt.Fprintf(b, "\n## %s\n\n", name)
	if cmd.Usage != "" {
		fmt.Fprintf(b, "%s.\n\n", upperFirst(strings.TrimSuffix(cmd.Usage, ".")))
	}
	synopsis := appName + " [global flags] " + name
	if len(visibleFlags(cmd.Flags)) > 0 {
		synopsis += " [flags]"
	}
	if cmd.ArgsUsage != "" {
		synopsis += " " + cmd.ArgsUsage
	}
	if len(cmd.Subcommands) > 0 && cmd.Action == nil {
		synopsis += " COMMAND"
	}
	fmt.Fprintf(b, "```\n%s\n```\n\n", synopsis)
	if cmd.Description != "" {
		fmt.Fprintf(b, "```\n%s\n```\n\n", strings.TrimRight(cmd.Description, "\n"))
	}
	if len(visibleFlags(cmd.Flags)) == 0 {
		b.WriteString("No flags of its own.\n")
		return
	}
	writeFlagTable(b, cmd.Flags)
}

func writeFlagTable(b *bytes.Buffer, flags []cli.Flag) {
	b.WriteString("| flag | environment | default | meaning |\n")
	b.WriteString("| --- | --- | --- | --- |\n")
	for _, f := range visibleFlags(flags) {
		placeholder, usage := "", ""
		var envs []string
		def := ""
		takesValue := true
		if d, ok := f.(cli.DocGenerationFlag); ok {
			placeholder, usage = unquoteFlagUsage(d.GetUsage())
			envs = d.GetEnvVars()
			def = flagDefault(f, d)
			takesValue = d.TakesValue()
		}
		if takesValue && placeholder == "" {
			placeholder = "value"
		}
		if s, ok := f.(cli.DocGenerationSliceFlag); ok && s.IsSliceFlag() && !strings.Contains(usage, "repeatable") {
			usage += " (repeatable)"
		}
		var names []string
		for _, n := range f.Names() {
			dash := "--"
			if len(n) == 1 {
				dash = "-"
			}
			if takesValue {
				names = append(names, "`"+dash+n+" "+placeholder+"`")
			} else {
				names = append(names, "`"+dash+n+"`")
			}
		}
		envCells := make([]string, len(envs))
		for i, e := range envs {
			envCells[i] = "`" + e + "`"
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s |\n", strings.Join(names, ", "), strings.Join(envCells, ", "),
			def, cell(usage))
	}
}

// flagDefault renders a flag's default as the command line would take it:
// durations as written (720h, not 720h0m0s), strings unquoted, nothing for
// an empty default.
func flagDefault(f cli.Flag, d cli.DocGenerationFlag) string {
	text := d.GetDefaultText()
	if text == "" {
		return ""
	}
	switch f := f.(type) {
	case *cli.StringFlag:
		if f.DefaultText == "" {
			if s, err := strconv.Unquote(text); err == nil {
				text = s
			}
		}
	case *cli.DurationFlag:
		if dur, err := time.ParseDuration(text); err == nil && f.DefaultText == "" {
			text = shortDuration(dur)
		}
	}
	if text == "" {
		return ""
	}
	return "`" + strings.ReplaceAll(text, "`", "'") + "`"
}

// shortDuration writes 720h0m0s as 720h and 1m30s as 1m30s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// unquoteFlagUsage returns the placeholder that urfave/cli takes from the
// first `quoted` word of a flag's usage, and the usage without the quotes.
func unquoteFlagUsage(usage string) (placeholder, text string) {
	start := strings.IndexByte(usage, '`')
	if start < 0 {
		return "", usage
	}
	end := strings.IndexByte(usage[start+1:], '`')
	if end < 0 {
		return "", usage
	}
	placeholder = usage[start+1 : start+1+end]
	return placeholder, usage[:start] + placeholder + usage[start+1+end+1:]
}

func visibleFlags(flags []cli.Flag) []cli.Flag {
	var out []cli.Flag
	for _, f := range flags {
		if v, ok := f.(cli.VisibleFlag); ok && !v.IsVisible() {
			continue
		}
		out = append(out, f)
	}
	return out
}

// cell escapes text for a markdown table cell.
func cell(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	return strings.ReplaceAll(s, "|", `\|`)
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// envVarFlags maps every environment variable the CLI reads, in any
// command, to the names of the flags that read it.
func envVarFlags(app *cli.App) map[string]map[string]bool {
	out := map[string]map[string]bool{}
	add := func(flags []cli.Flag) {
		for _, f := range flags {
			d, ok := f.(cli.DocGenerationFlag)
			if !ok {
				continue
			}
			for _, env := range d.GetEnvVars() {
				if out[env] == nil {
					out[env] = map[string]bool{}
				}
				for _, n := range f.Names() {
					out[env]["--"+n] = true
				}
			}
		}
	}
	add(app.Flags)
	var walk func(cmds []*cli.Command)
	walk = func(cmds []*cli.Command) {
		for _, c := range cmds {
			add(c.Flags)
			walk(c.Subcommands)
		}
	}
	walk(app.Commands)
	return out
}

// readmeRow is one row of README.md's configuration table: the environment
// variables of its first column and the flags of its second.
type readmeRow struct {
	envs, flags []string
}

// readmeConfigRows reads the table of README.md's "## Configuration"
// section.
func readmeConfigRows(t *testing.T, readme string) []readmeRow {
	t.Helper()
	_, section, ok := strings.Cut(readme, "\n## Configuration\n")
	require.True(t, ok, "README.md has no ## Configuration section")
	if next := strings.Index(section, "\n## "); next >= 0 {
		section = section[:next]
	}
	code := regexp.MustCompile("`([^`]+)`")
	envName := regexp.MustCompile(`^[A-Z][A-Z0-9_]*$`)
	var rows []readmeRow
	for _, line := range strings.Split(section, "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "|") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		if len(cells) < 2 {
			continue
		}
		var row readmeRow
		for _, m := range code.FindAllStringSubmatch(cells[0], -1) {
			if envName.MatchString(m[1]) {
				row.envs = append(row.envs, m[1])
			}
		}
		for _, m := range code.FindAllStringSubmatch(cells[1], -1) {
			if strings.HasPrefix(m[1], "--") {
				row.flags = append(row.flags, strings.Fields(m[1])[0])
			}
		}
		if len(row.envs) > 0 {
			rows = append(rows, row)
		}
	}
	return rows
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// firstDifference returns the 1-based number of the first line where a and
// b differ, and that line of each ("(end of file)" past the end).
func firstDifference(a, b string) (line int, lineA, lineB string) {
	la, lb := strings.Split(a, "\n"), strings.Split(b, "\n")
	at := func(lines []string, i int) string {
		if i < len(lines) {
			return lines[i]
		}
		return "(end of file)"
	}
	for i := range max(len(la), len(lb)) {
		if at(la, i) != at(lb, i) {
			return i + 1, at(la, i), at(lb, i)
		}
	}
	return 0, "", ""
}
