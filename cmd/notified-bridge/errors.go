package main

import (
	"regexp"
	"strings"
)

// fieldFlags maps the Go fields that library errors name (bridge.Config,
// web.Options, the schema) to the flag and variable that set them here.
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
var fieldRE = regexp.MustCompile(`\b(Schema|Table|IDColumn|NameColumn|Channel|PollInterval|BatchSize|Concurrency|MissingGrace|BatchTimeout|MaxBatchBytes|LargeRowBytes|Retention|User|Password)\b`)

// flagNames rewrites the Go field names in a library error's message to the
// flags that set them: the one place where the CLI speaks for the library.
// Quoted text ("...", with Go's escapes) holds the user's values and is left
// as it is.
func flagNames(msg string) string {
	var b strings.Builder
	start, inQuote := 0, false
	for i := 0; i < len(msg); i++ {
		switch {
		case inQuote && msg[i] == '\\':
			i++ // an escaped character, a quote included
		case msg[i] == '"':
			if !inQuote {
				b.WriteString(fieldRE.ReplaceAllStringFunc(msg[start:i], func(f string) string { return fieldFlags[f] }))
				start = i
			} else {
				b.WriteString(msg[start : i+1])
				start = i + 1
			}
			inQuote = !inQuote
		}
	}
	if inQuote {
		b.WriteString(msg[start:])
	} else {
		b.WriteString(fieldRE.ReplaceAllStringFunc(msg[start:], func(f string) string { return fieldFlags[f] }))
	}
	return b.String()
}
