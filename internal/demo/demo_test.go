package demo_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/notified/notified/internal/demo"
	"github.com/notified/notified/internal/pgcluster"
	"github.com/notified/notified/internal/testdb"
)

var schemaRE = regexp.MustCompile(`setting up schema (notified_demo_[0-9a-f]+)`)

func schemaExists(t *testing.T, name string) bool {
	t.Helper()
	return testdb.Count(t, testdb.Pool(t), "SELECT count(*) FROM pg_namespace WHERE nspname = $1", name) == 1
}

func TestDemoOnAGivenDatabase(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	err := demo.Run(context.Background(), demo.Options{DatabaseURL: testdb.URL(), Events: 8, Out: &out})
	require.NoError(t, err, out.String())
	s := out.String()
	m := schemaRE.FindStringSubmatch(s)
	require.NotNil(t, m, s)
	require.False(t, schemaExists(t, m[1]), "the demo's schema is dropped at the end")

	require.Contains(t, s, "inserting 8 events: 2 order_placed, 2 page_viewed, 4 user_signed_up")
	require.Contains(t, s, "events 8/8 recorded")
	// The greylisted first mail: retried, then completed.
	require.Regexp(t, `job \d+ +send_welcome_email +completed +attempt 2/25 +output \{"sent_to":"user\d+@example.com"\}, after: .*451`, s)
	// An order the endpoint answers 404 for: cancelled at once.
	require.Regexp(t, `job \d+ +call_webhook +cancelled +attempt 1/25 .*404`, s)
	// The webhook call is ordered by customer: the cancelled job's lane
	// went on past it.
	require.Regexp(t, `job \d+ +call_webhook +cancelled +attempt 1/25 +lane "customer2@example.com" .*404`, s)
	require.Contains(t, s, "its lane went on past it")
	// The small order: the webhook route's filter skipped it.
	require.Regexp(t, `no job +notified_webhook +skipped by filter \(\$\.total >= 50\)`, s)
	// No route.
	require.Contains(t, s, `(page_viewed): unrouted: no route for event name "page_viewed"`)
	require.Contains(t, s, "run with --keep to look at it afterwards")
}

func TestDemoKeepsItsSchemaWhenAsked(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	err := demo.Run(context.Background(), demo.Options{DatabaseURL: testdb.URL(), Events: 4, Keep: true, Out: &out})
	require.NoError(t, err, out.String())
	m := schemaRE.FindStringSubmatch(out.String())
	require.NotNil(t, m)
	t.Cleanup(func() { testdb.Exec(t, testdb.Pool(t), "DROP SCHEMA "+m[1]+" CASCADE") })
	require.True(t, schemaExists(t, m[1]))
	require.Equal(t, 4, testdb.Count(t, testdb.Pool(t), "SELECT count(*) FROM "+m[1]+".notified_dispatch"))
	require.Contains(t, out.String(), "schema "+m[1]+" kept")
}

func TestDemoStartsAThrowawayServer(t *testing.T) {
	t.Parallel()
	if _, err := pgcluster.FindBinaries(); errors.Is(err, pgcluster.ErrNoBinaries) {
		t.Skip(err)
	}
	var out bytes.Buffer
	err := demo.Run(context.Background(), demo.Options{Events: 4, Out: &out})
	require.NoError(t, err, out.String())
	m := regexp.MustCompile(`running on \S+, in (\S+) \(removed on exit\)`).FindStringSubmatch(out.String())
	require.NotNil(t, m, out.String())
	_, err = os.Stat(m[1])
	require.True(t, os.IsNotExist(err), "the throwaway server's directory %s is removed", m[1])
	require.Contains(t, out.String(), "events 4/4 recorded")
}

func TestDemoStopsCleanlyWhenCancelled(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	var out syncWriter
	done := make(chan error, 1)
	go func() {
		done <- demo.Run(ctx, demo.Options{DatabaseURL: testdb.URL(), Events: 40, Out: &out})
	}()
	testdb.WaitFor(t, 20*time.Second, func() (bool, string) {
		return schemaRE.MatchString(out.String()) && bytes.Contains([]byte(out.String()), []byte("inserting")), "demo not started"
	})
	cancel()
	select {
	case err := <-done:
		require.ErrorIs(t, err, context.Canceled)
	case <-time.After(20 * time.Second):
		t.Fatal("demo did not stop within 20s of cancel")
	}
	m := schemaRE.FindStringSubmatch(out.String())
	require.False(t, schemaExists(t, m[1]), "the demo's schema is dropped when it is interrupted")
}
