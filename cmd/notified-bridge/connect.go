package main

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/urfave/cli/v2"

	"github.com/notified/notified/migrations"
)

// connect opens a pool and checks that the database answers, so that a
// wrong URL fails at once with a message that says what to fix.
func connect(c *cli.Context, maxConns int32) (*pgxpool.Pool, error) {
	url := c.String("database-url")
	if url == "" {
		return nil, errors.New("no database: set DATABASE_URL or --database-url (e.g. postgres://user@localhost:5432/app)")
	}
	if err := checkDatabaseURL(url); err != nil {
		return nil, err
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("database URL is not valid: %s", redactParseError(err))
	}
	cfg.ConnConfig.RuntimeParams["application_name"] = "notified-bridge"
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = 10 * time.Second
	}
	if maxConns > 0 {
		cfg.MaxConns = maxConns
	}
	pool, err := pgxpool.NewWithConfig(c.Context, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to database: %w", err)
	}
	if err := pool.Ping(c.Context); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to database %s on %s:%d: %s: check DATABASE_URL and that the server is running",
			cfg.ConnConfig.Database, cfg.ConnConfig.Host, cfg.ConnConfig.Port, connectReason(err))
	}
	return pool, nil
}

// urlForms is the forms of a database URL that pgx reads, for messages.
const urlForms = "postgres://user:password@host:5432/database (or postgresql://), or a key=value DSN such as host=localhost dbname=app"

// schemeRE is what a URL's scheme looks like (RFC 3986), so that a message
// may quote it: it cannot hold a password.
var schemeRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*$`)

// checkDatabaseURL refuses, before any connection, a database URL that is
// neither a postgres:// or postgresql:// URL nor a key=value DSN, the
// forms pgx reads, rather than let pgx try it as a DSN and fail in its own
// words. The message never quotes the URL, which may hold a password; a
// URL's scheme it names.
func checkDatabaseURL(url string) error {
	if strings.HasPrefix(url, "postgres://") || strings.HasPrefix(url, "postgresql://") {
		return nil
	}
	scheme, _, isURL := strings.Cut(url, "://")
	if !isURL && strings.Contains(url, "=") {
		return nil // a key=value DSN, which pgx parses
	}
	switch {
	case isURL && (strings.EqualFold(scheme, "postgres") || strings.EqualFold(scheme, "postgresql")):
		return fmt.Errorf("database URL's scheme %s:// must be lower case: use %s", scheme, urlForms)
	case isURL && schemeRE.MatchString(scheme):
		return fmt.Errorf("database URL has scheme %s://, not postgres:// or postgresql://: use %s", scheme, urlForms)
	}
	return fmt.Errorf("database URL is neither a postgres:// URL nor a key=value DSN: use %s", urlForms)
}

// connectReason is the server's or the network's reason a connection failed,
// without the URL (which may hold a password).
func connectReason(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Message + " (SQLSTATE " + pgErr.Code + ")"
	}
	var connErr *pgconn.ConnectError
	if errors.As(err, &connErr) {
		err = connErr.Unwrap()
	}
	// pgx tries each address and TLS mode in turn and joins their errors,
	// which are often the same: say each once.
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		var parts []string
		for _, e := range joined.Unwrap() {
			if msg := e.Error(); !slices.Contains(parts, msg) {
				parts = append(parts, msg)
			}
		}
		return strings.Join(parts, "; ")
	}
	return err.Error()
}

// redactParseError drops the URL that pgx quotes in parse errors.
func redactParseError(err error) string {
	var perr *pgconn.ParseConfigError
	if errors.As(err, &perr) {
		if inner := perr.Unwrap(); inner != nil {
			return inner.Error()
		}
	}
	return "cannot parse it: use postgres://user:password@host:5432/database"
}

// connectMigrated connects and checks that notified's tables are there.
func connectMigrated(c *cli.Context) (*pgxpool.Pool, error) {
	pool, err := connect(c, 2)
	if err != nil {
		return nil, err
	}
	if err := migrations.Check(c.Context, pool, c.String("schema")); err != nil {
		pool.Close()
		return nil, err
	}
	return pool, nil
}
