package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/notified/notified/internal/eventstable"
	"github.com/notified/notified/internal/jobparams"
	"github.com/notified/notified/migrations"
)

// The events table can change under a running bridge: it can be dropped and
// created again (its capture trigger is then gone, and nothing inserted
// into the new table reaches the outbox), its id column can change type
// (the ids must then be parsed and compared as the new type), its capture
// trigger can be dropped or disabled. Every dispatch transaction, the one
// run every poll interval included, checks the table as it is, after its
// claim: a changed table is inspected again and the batch retried with the
// new picture, so no event is ever judged by a stale one; a table that
// cannot be dispatched from, or that has no capture trigger, is reported
// once in the log, on /readyz and in the notified_events_table_ok metric,
// until it is fixed.

// tableState is the events table as last inspected, with the queries built
// for it. It is replaced as a whole when the table changes.
type tableState struct {
	t *eventstable.Table
	// fetch reads a batch's rows, measured; insertLarge inserts the jobs
	// of a row too large to read; adopt puts notified ids that have a row
	// and no dispatch record into the outbox.
	fetch, insertLarge, adopt string
	// triggerMark is the channel as an SQL literal, as the capture
	// trigger's body spells it.
	triggerMark string
}

func newTableState(cfg Config, t *eventstable.Table) *tableState {
	return &tableState{
		t:           t,
		fetch:       t.FetchBoundedSQL(),
		insertLarge: jobparams.LargeRowSQL(migrations.Qualify(cfg.Schema, "river_job"), migrations.Qualify(cfg.Schema, "river_job_state"), t),
		adopt:       addToOutboxSQL(cfg.Schema, t),
		triggerMark: "'" + strings.ReplaceAll(cfg.Channel, "'", "''") + "'",
	}
}

// tableSeen is what checkTableSQL found.
type tableSeen struct {
	oid     *uint32
	idType  *uint32
	nameOK  bool
	trigger bool
}

func scanTableCheck(row pgx.Row) (tableSeen, error) {
	var s tableSeen
	if err := row.Scan(&s.oid, &s.idType, &s.nameOK, &s.trigger); err != nil {
		return s, fmt.Errorf("check the events table: %w", err)
	}
	return s, nil
}

var (
	// errTableChanged aborts a batch that found the events table changed
	// since it was inspected; the batch is retried at once with the table
	// inspected again.
	errTableChanged = errors.New("events table changed")
	// errTableUnusable aborts a batch when the events table cannot be
	// dispatched from; the problem is logged once and shown by Ready.
	errTableUnusable = errors.New("events table cannot be dispatched from")
)

// checkTable compares what a dispatch transaction found with st, the
// picture it works with. It returns errTableChanged after inspecting a
// changed table again, errTableUnusable when the table cannot be read, and
// nil when the batch can go on (with a missing capture trigger reported).
func (b *Bridge) checkTable(st *tableState, seen tableSeen) error {
	t := st.t
	switch {
	case seen.oid == nil:
		b.tableProblem(fmt.Sprintf("events table %s does not exist (dropped or renamed?): create it and install its capture trigger (notified-bridge install-trigger); "+
			"events still in the outbox wait until then", t.Display))
		return errTableUnusable
	case *seen.oid != t.OID || seen.idType == nil || *seen.idType != t.IDTypeOID || !seen.nameOK:
		return b.reinspect(st, *seen.oid)
	case !seen.trigger && !b.cfg.NoCaptureTrigger:
		b.tableProblem(fmt.Sprintf("events table %s has no enabled capture trigger for channel %q: new events are not captured. "+
			"Install it (notified-bridge install-trigger), then announce the ids inserted meanwhile (notified-bridge notify ID)", t.Display, b.cfg.Channel))
		return nil
	}
	b.tableProblem("")
	return nil
}

// reinspect reads the events table's columns again after a change. The
// batch that noticed it is rolled back and retried with the new picture.
func (b *Bridge) reinspect(old *tableState, oid uint32) error {
	ctx, cancel := context.WithTimeout(context.Background(), b.cfg.BatchTimeout)
	defer cancel()
	t, err := b.cfg.eventsTable().Inspect(ctx, b.pool)
	if err != nil {
		b.tableProblem(fmt.Sprintf("events table %s changed and cannot be dispatched from: %v", old.t.Display, err))
		return errTableUnusable
	}
	if t.OID != old.t.OID {
		b.log.Warn("events table was dropped and created again; reading the new one",
			slog.String("table", t.Display), slog.Uint64("old_oid", uint64(old.t.OID)), slog.Uint64("oid", uint64(oid)))
	}
	if t.TypeName != old.t.TypeName {
		// Postgres keeps the capture trigger's plans per session: a
		// session that inserted an event before the change fails its next
		// insert ("type of parameter ... does not match that when
		// preparing the plan") until the function is replaced.
		b.log.Warn("events table's id column changed type; ids are read as the new type",
			slog.String("table", t.Display), slog.String("old_type", old.t.TypeName), slog.String("type", t.TypeName),
			slog.String("fix", "install the capture trigger again (notified-bridge install-trigger), or producer sessions that inserted before the change fail their inserts"))
	}
	b.table.CompareAndSwap(old, newTableState(b.cfg, t))
	return errTableChanged
}

// tableProblem records what is wrong with the events table, or with ""
// that nothing is. A new problem is logged once, as an error; its end once,
// as information.
func (b *Bridge) tableProblem(problem string) {
	b.problemMu.Lock()
	defer b.problemMu.Unlock()
	if problem == b.problem {
		return
	}
	if problem == "" {
		b.log.Info("events table problem resolved", slog.String("was", b.problem))
		b.metrics.tableOK.Set(1)
	} else {
		b.log.Error("events table problem", slog.String("problem", problem))
		b.metrics.tableOK.Set(0)
	}
	b.problem = problem
}

// tableProblemNow returns the events table's current problem, or "".
func (b *Bridge) tableProblemNow() string {
	b.problemMu.Lock()
	defer b.problemMu.Unlock()
	return b.problem
}
