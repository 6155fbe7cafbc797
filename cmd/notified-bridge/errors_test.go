package main

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/urfave/cli/v2"
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
		require.Equal(t, want, flagNames(in, nil), in)
	}
}

// TestFlagNamesPerCommand: an error from a command's action that sets a
// field with a flag of its own names that flag, and the other fields as
// every command does; an error from before the action names the common
// flag.
func TestFlagNamesPerCommand(t *testing.T) {
	t.Parallel()
	for field := range benchFields {
		require.Contains(t, fieldFlags, field, "the bench's errors name a field main does not look for")
	}
	libErr := errors.New(`Schema "pg_x" is a system schema; BatchSize 20000 is out of range; Table "t" is missing`)
	action := withFields(benchFields, func(*cli.Context) error { return fmt.Errorf("bench: %w", libErr) })
	err := action(nil)
	require.ErrorIs(t, err, libErr, "the library's error stays inside, for errors.Is")
	require.Equal(t, `bench: --bench-schema "pg_x" is a system schema; --batch-size 20000 is out of range; `+
		`--table / NOTIFIED_EVENTS_TABLE_NAME "t" is missing`, flagNames(err.Error(), commandFields(err)))
	require.Equal(t, `--schema / NOTIFIED_SCHEMA "pg_x" is a system schema; --batch-size / NOTIFIED_BATCH_SIZE 20000 is out of range; `+
		`--table / NOTIFIED_EVENTS_TABLE_NAME "t" is missing`, flagNames(libErr.Error(), commandFields(libErr)))
	require.NoError(t, withFields(benchFields, func(*cli.Context) error { return nil })(nil))
}
