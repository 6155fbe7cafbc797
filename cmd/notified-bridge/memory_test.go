package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/notified/notified/internal/testdb"
)

// TestRunMemoryIsBoundedWhateverTheRowSizes: `run` dispatches rows many
// times larger than its byte budget, among rows around it, with a peak
// resident memory under the bound docs/operations.md states,
// 64 MiB + 4 × concurrency × --max-batch-bytes, far less than the data.
func TestRunMemoryIsBoundedWhateverTheRowSizes(t *testing.T) {
	if testing.Short() {
		t.Skip("inserts about 100 MB")
	}
	t.Parallel()
	db := testdb.New(t)
	mustRun(t, db, "install-trigger", "--table", db.Events(), "--channel", db.Channel)
	mustRun(t, db, "routes", "add", "big", "k")

	// Four rows of 24 MB of JSON each, and forty of 100 kB that do not
	// compress, in one backlog.
	testdb.Exec(t, db.Pool, "INSERT INTO "+db.Events()+` (name, payload)
		SELECT 'big', jsonb_build_object('s', repeat(md5(g::text), 24 * 1024 * 1024 / 32)) FROM generate_series(1, 4) g`)
	testdb.Exec(t, db.Pool, "INSERT INTO "+db.Events()+` (name, payload)
		SELECT 'big', jsonb_build_object('s', (SELECT string_agg(md5(random()::text || g::text || i::text), '') FROM generate_series(1, 3200) i))
		FROM generate_series(1, 40) g`)
	var dataBytes int64
	require.NoError(t, db.Pool.QueryRow(t.Context(), "SELECT sum(octet_length(row_to_json(e)::text)) FROM "+db.Events()+" e").Scan(&dataBytes))

	const batchBytes, largeBytes, concurrency = 1 << 20, 256 << 10, 2
	b := startBridge(t, db, "--max-batch-bytes", strconv.Itoa(batchBytes), "--large-row-bytes", strconv.Itoa(largeBytes),
		"--concurrency", strconv.Itoa(concurrency))
	waitDispatched(t, db, 44, 3*time.Minute)
	requireExactlyOnce(t, db, 44, "k")

	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", b.cmd.Process.Pid))
	require.NoError(t, err)
	var hwmKiB int64
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			hwmKiB, err = strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			require.NoError(t, err)
		}
	}
	require.NotZero(t, hwmKiB, "no VmHWM in /proc/%d/status", b.cmd.Process.Pid)
	bound := int64(64<<20 + 4*concurrency*batchBytes)
	t.Logf("peak RSS %d MiB for %d MiB of row data (bound %d MiB)", hwmKiB>>10, dataBytes>>20, bound>>20)
	require.Less(t, hwmKiB<<10, bound, "peak RSS over the documented bound")
	require.Less(t, hwmKiB<<10, dataBytes, "the bridge held the rows")
	require.Equal(t, exitTerminate, b.stop(t))
}
