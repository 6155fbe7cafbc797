package bridge_test

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/notified/notified/bridge"
	"github.com/notified/notified/internal/testdb"
)

// startTransactionPooler starts PgBouncer in transaction mode in front of
// the test database and returns a URL through it. It skips the test when
// PgBouncer is not installed (CI installs it).
func startTransactionPooler(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("pgbouncer")
	if err != nil {
		bin = "/usr/sbin/pgbouncer"
		if _, err := os.Stat(bin); err != nil {
			msg := "this test needs PgBouncer, which is not installed: apt-get install pgbouncer"
			// CI installs it and must run the test; elsewhere it may be
			// skipped.
			if strings.Contains(os.Getenv("NOTIFIED_TEST_REQUIRE"), "pgbouncer") {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
	}
	target, err := url.Parse(testdb.URL())
	require.NoError(t, err)
	host, port := target.Hostname(), target.Port()
	if port == "" {
		port = "5432"
	}
	// Not t.TempDir(): its parent is private to this user, and PgBouncer
	// runs as postgres when we are root.
	dir, err := os.MkdirTemp("", "notified-pgbouncer-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o777))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	listenPort := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	userName := target.User.Username()
	db := target.Path[1:]
	conf := fmt.Sprintf(`[databases]
%s = host=%s port=%s dbname=%s user=%s
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %d
unix_socket_dir =
auth_type = trust
auth_file = %s
pool_mode = transaction
max_client_conn = 200
default_pool_size = 20
ignore_startup_parameters = extra_float_digits
logfile = %s
pidfile = %s
`, db, host, port, db, userName, listenPort, filepath.Join(dir, "users.txt"), filepath.Join(dir, "log"), filepath.Join(dir, "pid"))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "users.txt"), []byte(strconv.Quote(userName)+` ""`+"\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "pgbouncer.ini"), []byte(conf), 0o644))
	cmd := exec.Command(bin, filepath.Join(dir, "pgbouncer.ini"))
	if os.Geteuid() == 0 { // PgBouncer refuses to run as root
		u, err := user.Lookup("postgres")
		require.NoError(t, err)
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	}
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(dir, "log"))
			t.Logf("pgbouncer output:\n%s\nlog:\n%s", out.String(), log)
		}
	})
	u := *target
	u.Host = net.JoinHostPort("127.0.0.1", strconv.Itoa(listenPort))
	q := u.Query()
	q.Set("default_query_exec_mode", "exec") // no named prepared statements through the pooler
	u.RawQuery = q.Encode()
	testdb.WaitFor(t, 10*time.Second, func() (bool, string) {
		c, err := net.Dial("tcp", u.Host)
		if err == nil {
			c.Close()
		}
		return err == nil, "pgbouncer not listening"
	})
	return u.String()
}

func TestListenerThroughTransactionPoolerIsReported(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.Route(t, "e", "k")
	pool, err := pgxpool.New(context.Background(), startTransactionPooler(t))
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	b, err := bridge.New(context.Background(), pool, tb.Config)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	// LISTEN succeeds through the pooler, but the probe never arrives.
	r := waitReadiness(t, b, 20*time.Second, "listener that receives no notifications reported", func(r bridge.Readiness, err error) bool {
		return hasReason(r, "the listener receives no notifications")
	})
	require.False(t, r.Ready)
	require.False(t, r.Listening)
	require.True(t, r.Database)
	require.Contains(t, r.Reasons[0], "use --poll-only")

	// Events are still dispatched, by polling.
	ids := tb.InsertEvents(t, "e", "e")
	tb.WaitRecorded(t, len(ids))
	require.Len(t, tb.jobsByEvent(t), len(ids))
}

func TestPollOnlyThroughTransactionPoolerIsReady(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.Route(t, "e", "k")
	pool, err := pgxpool.New(context.Background(), startTransactionPooler(t))
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	cfg := tb.Config
	cfg.PollOnly = true
	b, err := bridge.New(context.Background(), pool, cfg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	ids := tb.InsertEvents(t, "e", "e", "e")
	tb.WaitRecorded(t, len(ids))
	require.Len(t, tb.jobsByEvent(t), len(ids))
	waitReadiness(t, b, 10*time.Second, "ready", func(r bridge.Readiness, err error) bool { return err == nil })
}
