package main

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestFlagNames: library errors that name Go fields read as flags, and
// quoted values, escaped quotes included, are left alone.
func TestFlagNames(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"BatchSize 0 is out of range: use 1 to 10000":                          "--batch-size / NOTIFIED_BATCH_SIZE 0 is out of range: use 1 to 10000",
		`Table "pg_catalog.x" is in "pg_catalog"`:                              `--table / NOTIFIED_EVENTS_TABLE_NAME "pg_catalog.x" is in "pg_catalog"`,
		"events table not found: create it, or set Table to an existing table": "events table not found: create it, or set --table / NOTIFIED_EVENTS_TABLE_NAME to an existing table",
		`event name "Table Channel" has no route`:                              `event name "Table Channel" has no route`,
		`column "id\"; Table --": set IDColumn to`:                             `column "id\"; Table --": set --id-field / NOTIFIED_ID_FIELD_NAME to`,
		`unterminated "Table`:                                                  `unterminated "Table`,
		"web UI: set both User and Password, or neither":                       "web UI: set both --ui-user / NOTIFIED_UI_USER and --ui-password / NOTIFIED_UI_PASSWORD, or neither",
		"MaxBatchBytes 12 is too small":                                        "--max-batch-bytes / NOTIFIED_MAX_BATCH_BYTES 12 is too small",
		"Tables and Users are words":                                           "Tables and Users are words",
	} {
		require.Equal(t, want, flagNames(in), in)
	}
}
