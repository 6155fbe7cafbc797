package trigger

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/notified/notified/internal/dbtx"
)

// notifier is another trigger on the events table that notifies the
// channel on an insert.
type notifier struct {
	trigger  string // its name
	function string // its function, as regprocedure writes it
}

// notifyTriggers returns the triggers on table, other than the capture
// trigger trg, that notify channel on an insert: enabled row triggers on
// INSERT whose function calls pg_notify and names the channel, as a string
// literal in its source or as one of the trigger's arguments. It reads the catalogs only, so it
// may miss a function that builds the channel's name, and name one that
// only mentions it.
func notifyTriggers(ctx context.Context, db dbtx.DBTX, table []string, trg, channel string) ([]notifier, error) {
	rows, err := db.Query(ctx, notifyTriggersSQL, pgx.Identifier(table).Sanitize(), trg, channel)
	if err != nil {
		return nil, fmt.Errorf("look for other triggers that notify channel %q on %s: %w", channel, strings.Join(table, "."), err)
	}
	ns, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (notifier, error) {
		var n notifier
		err := row.Scan(&n.trigger, &n.function)
		return n, err
	})
	if err != nil {
		return nil, fmt.Errorf("look for other triggers that notify channel %q on %s: %w", channel, strings.Join(table, "."), err)
	}
	return ns, nil
}

// warning says what the notifier does beside the capture trigger, and how
// to drop it.
func (n notifier) warning(table []string, channel string) string {
	return fmt.Sprintf("table %s also has trigger %s (function %s), which calls pg_notify on channel %q: "+
		"with the capture trigger each insert sends two notifications (harmless, the bridge deduplicates, but twice the traffic); "+
		"once nothing else listens for its notifications, drop it: DROP TRIGGER %s ON %s;",
		strings.Join(table, "."), pgx.Identifier{n.trigger}.Sanitize(), n.function, channel,
		pgx.Identifier{n.trigger}.Sanitize(), pgx.Identifier(table).Sanitize())
}
