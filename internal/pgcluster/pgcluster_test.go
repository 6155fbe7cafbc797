package pgcluster_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/notified/notified/internal/pgcluster"
)

func TestStartRefusesASettingThatIsNotPlain(t *testing.T) {
	t.Parallel()
	for name, value := range map[string]string{"work_mem": "4MB -c fsync=on", "": "on", "x y": "on", "jit": ""} {
		_, err := pgcluster.Start(context.Background(), pgcluster.Options{Settings: map[string]string{name: value}})
		require.EqualError(t, err, `server setting "`+name+`" = "`+value+`": names and values may hold letters, digits, '_' and '.' only`)
	}
}

func TestStartAppliesSettings(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c, err := pgcluster.Start(ctx, pgcluster.Options{Settings: map[string]string{"track_commit_timestamp": "on", "work_mem": "8MB"}})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, c.Stop(context.Background())) })
	conn, err := pgx.Connect(ctx, c.URL())
	require.NoError(t, err)
	defer conn.Close(ctx)
	var track, workMem string
	require.NoError(t, conn.QueryRow(ctx, "SELECT current_setting('track_commit_timestamp'), current_setting('work_mem')").Scan(&track, &workMem))
	require.Equal(t, "on", track)
	require.Equal(t, "8MB", workMem)
}
