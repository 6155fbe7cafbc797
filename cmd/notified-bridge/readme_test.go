package main

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/urfave/cli/v2"
)

// TestReadmeConfigurationTableNamesEveryRunFlag: the README's configuration
// table says it lists the bridge's settings as `run` reads them, and the
// paragraph after it names the tuning flags it leaves to
// docs/configuration.md. Every flag of run, and every global flag, is in one
// or the other, and the table names no flag that run does not read.
func TestReadmeConfigurationTableNamesEveryRunFlag(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile(readmePath)
	require.NoError(t, err)
	inTable := map[string]bool{}
	for _, row := range readmeConfigRows(t, string(readme)) {
		for _, f := range row.flags {
			inTable[f] = true
		}
	}
	_, section, _ := strings.Cut(string(readme), "\n## Configuration\n")
	section, _, _ = strings.Cut(section, "\n## ")
	_, after, ok := strings.Cut(section, "\n\nThe tuning flags of `run`")
	require.True(t, ok, "README.md's configuration section lacks the paragraph naming run's tuning flags")

	app := newApp()
	var run *cli.Command
	for _, c := range app.Commands {
		if c.Name == "run" {
			run = c
		}
	}
	require.NotNil(t, run)
	reads := map[string]bool{}
	for _, f := range append(visibleFlags(run.Flags), visibleFlags(app.Flags)...) {
		name := "--" + f.Names()[0]
		reads[name] = true
		require.True(t, inTable[name] || strings.Contains(after, "`"+name+"`"),
			"README.md's configuration section names neither in its table nor among the tuning flags %s, a flag of run", name)
		require.False(t, inTable[name] && strings.Contains(after, "`"+name+"`"), "%s is both in the table and among the tuning flags", name)
	}
	for f := range inTable {
		require.True(t, reads[f], "README.md's configuration table names %s, which run does not read", f)
	}
}
