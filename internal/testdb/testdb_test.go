package testdb_test

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/notified/notified/internal/pgcluster"
	"github.com/notified/notified/internal/testdb"
)

func noEnv(string) string { return "" }

// closedPortURL is a Postgres URL on a loopback port nothing listens on.
func closedPortURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return "postgres://postgres@" + addr + "/test?sslmode=disable&connect_timeout=2"
}

// requireThrowaway checks that url is a working throwaway server, then
// stops it.
func requireThrowaway(t *testing.T, url string, c *pgcluster.Cluster, notURL string) {
	t.Helper()
	require.NotNil(t, c, "a throwaway server was started")
	t.Cleanup(func() { require.NoError(t, c.Stop(context.Background())) })
	require.NotEqual(t, notURL, url)
	require.Equal(t, c.URL(), url)
	conn, err := pgx.Connect(context.Background(), url)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	var one int
	require.NoError(t, conn.QueryRow(context.Background(), "SELECT 1").Scan(&one))
	require.Equal(t, 1, one)
}

func skipWithoutBinaries(t *testing.T) {
	t.Helper()
	if _, err := pgcluster.FindBinaries(); errors.Is(err, pgcluster.ErrNoBinaries) {
		t.Skip(err)
	}
}

func TestResolvePrefersTheEnvironment(t *testing.T) {
	t.Parallel()
	env := map[string]string{"TEST_DATABASE_URL": "postgres://a/test", "DATABASE_URL": "postgres://b/test"}
	url, c, err := testdb.Resolve(context.Background(), func(k string) string { return env[k] }, closedPortURL(t))
	require.NoError(t, err)
	require.Nil(t, c)
	require.Equal(t, "postgres://a/test", url)

	delete(env, "TEST_DATABASE_URL")
	url, c, err = testdb.Resolve(context.Background(), func(k string) string { return env[k] }, closedPortURL(t))
	require.NoError(t, err)
	require.Nil(t, c)
	require.Equal(t, "postgres://b/test", url)
}

func TestResolveUsesTheDefaultServerWhenItAnswers(t *testing.T) {
	t.Parallel()
	answering := testdb.URL() // whatever this run's tests use answers
	url, c, err := testdb.Resolve(context.Background(), noEnv, answering)
	require.NoError(t, err)
	require.Nil(t, c)
	require.Equal(t, answering, url)
}

func TestResolveStartsAThrowawayServerWhenThePortIsClosed(t *testing.T) {
	t.Parallel()
	skipWithoutBinaries(t)
	def := closedPortURL(t)
	url, c, err := testdb.Resolve(context.Background(), noEnv, def)
	require.NoError(t, err)
	requireThrowaway(t, url, c, def)
}

func TestResolveStartsAThrowawayServerWhenThePortIsBusy(t *testing.T) {
	t.Parallel()
	skipWithoutBinaries(t)
	// Something that is not Postgres holds the port: it answers every
	// connection with a line of text and hangs up.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			_, _ = conn.Write([]byte("HTTP/1.1 400 Bad Request\r\n\r\n"))
			conn.Close()
		}
	}()
	def := "postgres://postgres@" + l.Addr().String() + "/test?sslmode=disable&connect_timeout=2"
	url, c, err := testdb.Resolve(context.Background(), noEnv, def)
	require.NoError(t, err)
	requireThrowaway(t, url, c, def)
}

func TestThrowawayServerIsRemovedAfterItsProcessExits(t *testing.T) {
	t.Parallel()
	skipWithoutBinaries(t)
	ctx := context.Background()
	c, err := pgcluster.Start(ctx)
	require.NoError(t, err)
	child := exec.Command("sleep", "1")
	require.NoError(t, child.Start())
	require.NoError(t, c.StopWhenProcessExits(child.Process.Pid))
	require.NoError(t, child.Wait())

	dir := c.Dir()
	testdb.WaitFor(t, 20*time.Second, func() (bool, string) {
		_, err := os.Stat(dir)
		return os.IsNotExist(err), dir + " still exists"
	})
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err = pgx.Connect(cctx, c.URL())
	require.Error(t, err, "the server is stopped")
	require.True(t, strings.Contains(err.Error(), "connect"), err.Error())
}
