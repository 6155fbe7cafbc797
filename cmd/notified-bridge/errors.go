package main

import (
	"errors"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/notified/notified/internal/termsafe"
)

// fieldFlags maps the Go fields that library errors name (bridge.Config,
// web.Options, the schema) to the flag and variable that set them here. A
// command that sets a field with another flag says so with withFields.
var fieldFlags = map[string]string{
	"Schema":        "--schema / NOTIFIED_SCHEMA",
	"Table":         "--table / NOTIFIED_EVENTS_TABLE_NAME",
	"IDColumn":      "--id-field / NOTIFIED_ID_FIELD_NAME",
	"NameColumn":    "--name-field / NOTIFIED_NAME_FIELD_NAME",
	"Channel":       "--channel / NOTIFIED_CHANNEL",
	"PollInterval":  "--poll-interval / NOTIFIED_CHANNEL_SELECT_TIMEOUT",
	"BatchSize":     "--batch-size / NOTIFIED_BATCH_SIZE",
	"Concurrency":   "--concurrency / NOTIFIED_CONCURRENCY",
	"MissingGrace":  "--missing-grace / NOTIFIED_MISSING_GRACE",
	"BatchTimeout":  "--batch-timeout / NOTIFIED_BATCH_TIMEOUT",
	"MaxBatchBytes": "--max-batch-bytes / NOTIFIED_MAX_BATCH_BYTES",
	"LargeRowBytes": "--large-row-bytes / NOTIFIED_LARGE_ROW_BYTES",
	"Retention":     "--retention / NOTIFIED_RETENTION",
	"User":          "--ui-user / NOTIFIED_UI_USER",
	"Password":      "--ui-password / NOTIFIED_UI_PASSWORD",
}

// fieldRE finds those field names as words.
var fieldRE = regexp.MustCompile(`\b(` + strings.Join(slices.Sorted(maps.Keys(fieldFlags)), "|") + `)\b`)

// fieldsError is an error from the action of a command that sets some of
// the fields with flags of its own.
type fieldsError struct {
	err    error
	fields map[string]string // field -> flag, before fieldFlags
}

func (e *fieldsError) Error() string { return e.err.Error() }
func (e *fieldsError) Unwrap() error { return e.err }

// withFields has the errors of a command's action name the fields in
// fields (a subset of fieldFlags' keys) with the flags given there: the
// bench's scratch schema, Schema in its errors, is --bench-schema. Errors
// from before the action (the global flags' checks) keep fieldFlags.
func withFields(fields map[string]string, action cli.ActionFunc) cli.ActionFunc {
	return func(c *cli.Context) error {
		if err := action(c); err != nil {
			return &fieldsError{err: err, fields: fields}
		}
		return nil
	}
}

// commandFields returns the fields that err's command sets with flags of
// its own (see withFields), or nil.
func commandFields(err error) map[string]string {
	var fe *fieldsError
	if errors.As(err, &fe) {
		return fe.fields
	}
	return nil
}

// flagNames rewrites the Go field names in a library error's message to the
// flags that set them, those of fields first, then fieldFlags': the one
// place where the CLI speaks for the library. Quoted text ("...", with Go's
// escapes) holds the user's values and is left as it is.
func flagNames(msg string, fields map[string]string) string {
	flag := func(f string) string {
		if s, ok := fields[f]; ok {
			return s
		}
		return fieldFlags[f]
	}
	return termsafe.ReplaceOutsideQuotes(msg, fieldRE, flag)
}
