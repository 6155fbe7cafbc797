package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/notified/notified/internal/testdb"
)

func TestBuildVersion(t *testing.T) {
	t.Parallel()
	settings := func(kv ...string) []debug.BuildSetting {
		var s []debug.BuildSetting
		for i := 0; i < len(kv); i += 2 {
			s = append(s, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
		}
		return s
	}
	for _, c := range []struct {
		name string
		bi   debug.BuildInfo
		want string
	}{
		{"go install of a release", debug.BuildInfo{Main: debug.Module{Version: "v1.4.0"}}, "v1.4.0"},
		{"source tree without version control", debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "devel"},
		{"no module version", debug.BuildInfo{}, "devel"},
		{"source tree with a revision", debug.BuildInfo{Main: debug.Module{Version: "(devel)"},
			Settings: settings("vcs.revision", "0123456789abcdef0123", "vcs.time", "2026-12-01T10:00:00Z", "vcs.modified", "false")},
			"devel (rev 0123456789ab, 2026-12-01T10:00:00Z)"},
		{"modified tree", debug.BuildInfo{Main: debug.Module{Version: "(devel)"},
			Settings: settings("vcs.revision", "0123456789abcdef0123", "vcs.modified", "true")},
			"devel (rev 0123456789ab, modified)"},
		{"pseudo-version naming the revision", debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261201100000-0123456789ab+dirty"},
			Settings: settings("vcs.revision", "0123456789abcdef0123", "vcs.modified", "true")},
			"v0.0.0-20261201100000-0123456789ab+dirty"},
	} {
		t.Run(c.name, func(t *testing.T) {
			require.Equal(t, c.want, buildVersion(&c.bi))
		})
	}
}

func TestExitStatus(t *testing.T) {
	t.Parallel()
	require.Equal(t, 0, exitStatus(nil, nil))
	require.Equal(t, 130, exitStatus(nil, os.Interrupt))
	require.Equal(t, 143, exitStatus(nil, syscall.SIGTERM))
	require.Equal(t, 1, exitStatus(context.Canceled, os.Interrupt), "a failure exits 1, signal or not")
	require.Equal(t, 1, exitStatus(context.Canceled, nil))
}

// buildWithVersion builds notified-bridge with -ldflags "-X
// main.version=version", as a release does.
func buildWithVersion(t *testing.T, version string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "notified-bridge")
	build := exec.Command("go", "build", "-ldflags", "-X main.version="+version, "-o", bin, ".")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	return bin
}

// startBinary starts bin's `run` on the test's table and channel and waits
// until it listens; the process is killed when the test ends if it runs.
func startBinary(t *testing.T, bin string, db *testdb.DB) *bridgeProc {
	t.Helper()
	return startRun(t, bin, envWithURL(db.URL), runArgs(db))
}

// TestVersionSetAtBuildTime: the version given with -ldflags is what
// --version prints, what a bridge registers, and what status shows, as
// text and as JSON.
func TestVersionSetAtBuildTime(t *testing.T) {
	t.Parallel()
	bin := buildWithVersion(t, "v1.2.3")
	db := testdb.New(t)

	out, err := exec.Command(bin, "--version").Output()
	require.NoError(t, err)
	require.Equal(t, "notified-bridge version v1.2.3\n", string(out))

	b := startBinary(t, bin, db)
	testdb.WaitFor(t, 15*time.Second, func() (bool, string) {
		n := count(t, db, "SELECT count(*) FROM "+tbl(db, "notified_bridge")+" WHERE pid = $1 AND version = 'v1.2.3'", b.cmd.Process.Pid)
		return n == 1, "the bridge registered with version v1.2.3"
	})

	cmd := exec.Command(bin, "--schema", db.Schema, "status", "--channel", db.Channel, "--json")
	cmd.Env = envWithURL(db.URL)
	out, err = cmd.Output()
	require.NoError(t, err)
	var st struct {
		Version string `json:"version"`
		Bridges []struct {
			Version string `json:"version"`
		} `json:"bridges"`
	}
	require.NoError(t, json.Unmarshal(out, &st), string(out))
	require.Equal(t, "v1.2.3", st.Version)
	require.Len(t, st.Bridges, 1)
	require.Equal(t, "v1.2.3", st.Bridges[0].Version)

	cmd = exec.Command(bin, "--schema", db.Schema, "status", "--channel", db.Channel)
	cmd.Env = envWithURL(db.URL)
	out, err = cmd.Output()
	require.NoError(t, err)
	require.Equal(t, []string{"version", "notified-bridge", "v1.2.3"}, line(t, string(out), "version"))

	require.Equal(t, exitTerminate, b.stop(t))
}

// TestVersionFromBuildInfo: without -ldflags, --version prints the version
// from the build information, which status and the bridges report too.
func TestVersionFromBuildInfo(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	out := mustRun(t, db, "--version")
	want := strings.TrimPrefix(strings.TrimSuffix(out, "\n"), "notified-bridge version ")
	require.NotEmpty(t, want)
	require.NotEqual(t, out, want, "--version prints: %q", out)

	var st struct {
		Version string `json:"version"`
	}
	require.NoError(t, json.Unmarshal([]byte(mustRun(t, db, "status", "--channel", db.Channel, "--json")), &st))
	require.Equal(t, want, st.Version)
	require.Equal(t, append([]string{"version", "notified-bridge"}, strings.Fields(want)...), line(t, mustRun(t, db, "status", "--channel", db.Channel), "version"))
}
