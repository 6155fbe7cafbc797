package ident_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/notified/notified/internal/ident"
)

// TestPublishLinksNeitherRiverNorTheBridge: a producer importing publish
// gets the name rules from this package, and none of River, Prometheus or
// the bridge.
func TestPublishLinksNeitherRiverNorTheBridge(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "list", "-deps", "github.com/notified/notified/publish").CombinedOutput()
	require.NoError(t, err, "%s", out)
	deps := strings.Fields(string(out))
	for _, dep := range deps {
		require.False(t, strings.HasPrefix(dep, "github.com/riverqueue/"), "publish links %s", dep)
		require.False(t, strings.HasPrefix(dep, "github.com/prometheus/"), "publish links %s", dep)
		require.NotEqual(t, "github.com/notified/notified/bridge", dep)
	}
	require.Contains(t, deps, "github.com/notified/notified/internal/ident")
}

// TestQualify quotes every part, whatever it holds.
func TestQualify(t *testing.T) {
	t.Parallel()
	require.Equal(t, `"notified_outbox"`, ident.Qualify("", "notified_outbox"))
	require.Equal(t, `"app"."notified_outbox"`, ident.Qualify("app", "notified_outbox"))
	require.Equal(t, `"a""b"."t"`, ident.Qualify(`a"b`, "t"))
}

// TestRandomName gives a valid schema name that differs from call to call.
func TestRandomName(t *testing.T) {
	t.Parallel()
	a, b := ident.RandomName("scratch_"), ident.RandomName("scratch_")
	require.Regexp(t, `^scratch_[0-9a-f]{8}$`, a)
	require.NotEqual(t, a, b)
	require.True(t, ident.SchemaValid(ident.RandomName(strings.Repeat("x", 38))))
}
