package bridge

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/notified/notified/internal/termsafe"
)

// envVar is one environment variable of the bridge's configuration: the
// Config field it sets, as Validate's errors name it, and how it is read.
type envVar struct {
	name  string
	field string
	set   func(c *Config, name, value string) error
}

// envVars are the variables ConfigFromLookup reads, those that
// `notified-bridge run` reads for the same fields, with the same defaults.
var envVars = []envVar{
	{"NOTIFIED_SCHEMA", "Schema", func(c *Config, _, v string) error { c.Schema = v; return nil }},
	{"NOTIFIED_EVENTS_TABLE_NAME", "Table", envName(func(c *Config) *string { return &c.Table })},
	{"NOTIFIED_ID_FIELD_NAME", "IDColumn", envName(func(c *Config) *string { return &c.IDColumn })},
	{"NOTIFIED_NAME_FIELD_NAME", "NameColumn", envName(func(c *Config) *string { return &c.NameColumn })},
	{"NOTIFIED_CHANNEL", "Channel", envName(func(c *Config) *string { return &c.Channel })},
	{"NOTIFIED_CHANNEL_SELECT_TIMEOUT", "PollInterval", func(c *Config, name, v string) error {
		d, err := ParseInterval(v)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		c.PollInterval = d
		return nil
	}},
	{"NOTIFIED_BATCH_SIZE", "BatchSize", envInt(func(c *Config) *int { return &c.BatchSize }, DefaultBatchSize)},
	{"NOTIFIED_CONCURRENCY", "Concurrency", envInt(func(c *Config) *int { return &c.Concurrency }, DefaultConcurrency)},
	{"NOTIFIED_MISSING_GRACE", "MissingGrace", envDuration(func(c *Config) *time.Duration { return &c.MissingGrace }, DefaultMissingGrace, true)},
	{"NOTIFIED_MAX_BATCH_BYTES", "MaxBatchBytes", envBytes(func(c *Config) *int64 { return &c.MaxBatchBytes }, DefaultMaxBatchBytes)},
	{"NOTIFIED_LARGE_ROW_BYTES", "LargeRowBytes", envBytes(func(c *Config) *int64 { return &c.LargeRowBytes }, DefaultLargeRowBytes)},
	{"NOTIFIED_BATCH_TIMEOUT", "BatchTimeout", envDuration(func(c *Config) *time.Duration { return &c.BatchTimeout }, DefaultBatchTimeout, false)},
	{"NOTIFIED_RETENTION", "Retention", func(c *Config, name, v string) error {
		d, err := ParseRetention(v)
		if err != nil {
			return err // names Retention
		}
		c.Retention = d
		return nil
	}},
	{"NOTIFIED_POLL_ONLY", "PollOnly", envBool(func(c *Config) *bool { return &c.PollOnly })},
	{"NOTIFIED_NO_CAPTURE_TRIGGER", "NoCaptureTrigger", envBool(func(c *Config) *bool { return &c.NoCaptureTrigger })},
}

// EnvVars returns the names of the environment variables ConfigFromEnv
// reads, in the order of Config's fields.
func EnvVars() []string {
	names := make([]string, len(envVars))
	for i, v := range envVars {
		names[i] = v.name
	}
	return names
}

// ConfigFromEnv reads the bridge's configuration from the environment, from
// the variables `notified-bridge run` reads (see EnvVars and
// docs/configuration.md), and validates it. See ConfigFromLookup.
func ConfigFromEnv() (Config, error) { return ConfigFromLookup(os.LookupEnv) }

// ConfigFromLookup reads the bridge's configuration from the variables
// EnvVars names, looked up with lookup (os.LookupEnv, or a source of the
// caller's), with the meanings and defaults `notified-bridge run` gives
// them: NOTIFIED_CHANNEL_SELECT_TIMEOUT is the poll interval, in seconds as
// the Python listener read it or as a Go duration; NOTIFIED_RETENTION is a
// duration or "forever".
//
// A variable that is unset or empty leaves its field zero, which Config
// reads as the default (WithDefaults shows them), except the four names
// (NOTIFIED_EVENTS_TABLE_NAME, NOTIFIED_ID_FIELD_NAME,
// NOTIFIED_NAME_FIELD_NAME, NOTIFIED_CHANNEL): set but empty, as a
// forgotten shell variable leaves them, they are an error, as they are for
// the command. So is 0 for NOTIFIED_BATCH_SIZE, NOTIFIED_CONCURRENCY and
// NOTIFIED_MISSING_GRACE, which would otherwise silently mean the default.
//
// The configuration is validated (Validate, after WithDefaults): an error
// names the variable, quotes its value and says what to write instead.
// Version and Logger are left for the caller to set.
func ConfigFromLookup(lookup func(string) (string, bool)) (Config, error) {
	if lookup == nil {
		return Config{}, errors.New("ConfigFromLookup: lookup is nil")
	}
	var c Config
	for _, v := range envVars {
		value, ok := lookup(v.name)
		if !ok || value == "" && !isName(v.field) {
			continue
		}
		if err := v.set(&c, v.name, value); err != nil {
			return Config{}, renamed(err)
		}
	}
	if err := c.WithDefaults().Validate(); err != nil {
		return Config{}, renamed(err)
	}
	return c, nil
}

// isName reports whether field is one of the names that may not be set
// empty.
func isName(field string) bool {
	switch field {
	case "Table", "IDColumn", "NameColumn", "Channel":
		return true
	}
	return false
}

func envName(field func(*Config) *string) func(*Config, string, string) error {
	return func(c *Config, name, v string) error {
		if strings.TrimSpace(v) == "" {
			return fmt.Errorf("%s is empty: give a value, or leave it unset for the default", name)
		}
		*field(c) = v
		return nil
	}
}

func envBool(field func(*Config) *bool) func(*Config, string, string) error {
	return func(c *Config, name, v string) error {
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("%s %s is not a boolean: give true or false", name, termsafe.QuoteShort(v))
		}
		*field(c) = b
		return nil
	}
}

func envInt(field func(*Config) *int, def int) func(*Config, string, string) error {
	return func(c *Config, name, v string) error {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		switch {
		case err != nil:
			return fmt.Errorf("%s %s is not a whole number: give one such as %d, or leave it unset for the default", name, termsafe.QuoteShort(v), def)
		case n == 0:
			return fmt.Errorf("%s is 0: give a positive value, or leave it unset for the default (%d)", name, def)
		}
		*field(c) = n
		return nil
	}
}

func envBytes(field func(*Config) *int64, def int64) func(*Config, string, string) error {
	return func(c *Config, name, v string) error {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return fmt.Errorf("%s %s is not a number of bytes: give one such as %d, or leave it unset for the default", name, termsafe.QuoteShort(v), def)
		}
		*field(c) = n
		return nil
	}
}

// envDuration reads a Go duration; refuseZero refuses 0, as the command
// does for the fields where 0 would silently be the default.
func envDuration(field func(*Config) *time.Duration, def time.Duration, refuseZero bool) func(*Config, string, string) error {
	return func(c *Config, name, v string) error {
		d, err := time.ParseDuration(strings.TrimSpace(v))
		switch {
		case err != nil:
			return fmt.Errorf("%s %s is not a duration: give one such as %s, or leave it unset for the default", name, termsafe.QuoteShort(v), def)
		case d == 0 && refuseZero:
			return fmt.Errorf("%s is 0s: give a positive value, or leave it unset for the default (%s)", name, def)
		}
		*field(c) = d
		return nil
	}
}

// ParseRetention reads a retention as NOTIFIED_RETENTION and --retention
// take it: a positive Go duration ("720h"), or "forever". 0, which meant
// forever before forever was a word, still does. Both give KeepForever: as
// Config.Retention, 0 would be the default, 30 days. Its errors name the
// field, Retention.
func ParseRetention(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if strings.EqualFold(s, "forever") {
		return KeepForever, nil
	}
	d, err := time.ParseDuration(s)
	switch {
	case err != nil:
		return 0, fmt.Errorf("Retention %s is not a duration: give one such as 720h (30 days), or forever", termsafe.QuoteShort(s))
	case d < 0:
		return 0, fmt.Errorf("Retention %s is negative: give a duration such as 720h (30 days), or forever", termsafe.QuoteShort(s))
	case d == 0:
		return KeepForever, nil
	}
	return d, nil
}

// envError is an error that names Config's fields (Validate's), as
// ConfigFromLookup returns it: naming the variables instead.
type envError struct {
	msg string
	err error
}

func (e *envError) Error() string { return e.msg }
func (e *envError) Unwrap() error { return e.err }

// renamed is err with the fields it names renamed to their variables.
func renamed(err error) error { return &envError{msg: envNames(err.Error()), err: err} }

// envFieldRE finds the names of the fields envVars set, as words.
var envFieldRE = func() *regexp.Regexp {
	fields := make([]string, len(envVars))
	for i, v := range envVars {
		fields[i] = v.field
	}
	return regexp.MustCompile(`\b(` + strings.Join(fields, "|") + `)\b`)
}()

// envNames rewrites the field names in msg, outside quoted text (the
// values, with Go's escapes), to the variables that set them.
func envNames(msg string) string {
	rename := func(field string) string {
		for _, v := range envVars {
			if v.field == field {
				return v.name
			}
		}
		return field
	}
	return termsafe.ReplaceOutsideQuotes(msg, envFieldRE, rename)
}
