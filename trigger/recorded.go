package trigger

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"

	"github.com/jackc/pgx/v5"

	"github.com/notified/notified/internal/dbtx"
)

// ErrRecordedIDs says that the id column's sequence will produce ids that
// are already recorded for the channel in notified_dispatch, which is what
// makes dispatch exactly once: the events that get them would be skipped as
// already dispatched. It happens when the events table was dropped and
// created again, or its sequence restarted (TRUNCATE ... RESTART IDENTITY),
// while the channel keeps the records of the old rows. Install returns it
// wrapped in a *RecordedIDsError.
var ErrRecordedIDs = errors.New("ids the events table will produce are already recorded for the channel")

// RecordedIDsError is ErrRecordedIDs with the facts.
type RecordedIDsError struct {
	// Table is the events table, schema-qualified.
	Table string
	// Channel is the channel whose records the ids are in.
	Channel string
	// Sequence is the id column's sequence, quoted and schema-qualified.
	Sequence string
	// Next is the next value of Sequence.
	Next int64
	// Descending says the sequence counts down.
	Descending bool
	// Count is how many recorded ids lie ahead of the sequence: from Next
	// on (back, when Descending) to the sequence's limit.
	Count int64
	// Restart is the value that puts the sequence past every one of them.
	// It is valid when CanRestart; otherwise the sequence would have to go
	// past its limit.
	Restart    int64
	CanRestart bool
}

// Error says what is wrong and what to do, naming Options' fields.
func (e *RecordedIDsError) Error() string {
	return e.Explain("Options.RestartSequence", "Options.Channel", "Options.AllowRecordedIDs")
}

// Unwrap returns ErrRecordedIDs.
func (e *RecordedIDsError) Unwrap() error { return ErrRecordedIDs }

// Explain is Error with the three ways out named as the caller offers them
// (a command names its flags).
func (e *RecordedIDsError) Explain(restartSequence, channel, allowRecordedIDs string) string {
	s := ErrRecordedIDs.Error() + ": " + e.what() + ". "
	if e.CanRestart {
		s += fmt.Sprintf("Restart the sequence past them (%s runs %s in the install's transaction), use",
			restartSequence, printable((&SequenceRestart{Sequence: e.Sequence, Value: e.Restart}).SQL()))
	} else {
		s += "The sequence cannot be restarted past them without going beyond its limit: use"
	}
	return s + fmt.Sprintf(" a channel with no records (%s, the bridge's too), or install anyway (%s)", channel, allowRecordedIDs)
}

// what says what the recorded ids are and what becomes of their events.
func (e *RecordedIDsError) what() string {
	after := "at or after"
	if e.Descending {
		after = "at or before"
	}
	return fmt.Sprintf("channel %q already has dispatch records for %d ids %s %d, the next value of sequence %s of %s: rows that get them will be skipped as already dispatched",
		e.Channel, e.Count, after, e.Next, printable(e.Sequence), printable(e.Table))
}

// printable returns s, or s quoted as a Go string when it holds characters
// that are not printable (a name from the catalog may carry a terminal
// escape).
func printable(s string) string {
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return strconv.Quote(s)
		}
	}
	return s
}

// SequenceRestart restarts a sequence at a value.
type SequenceRestart struct {
	// Sequence is quoted and schema-qualified.
	Sequence string
	// Value is the sequence's next value after the restart.
	Value int64
}

// String says what the restart does, for people: the sequence's name is
// quoted as a Go string if it holds characters that are not printable.
func (r *SequenceRestart) String() string {
	return "sequence " + printable(r.Sequence) + " restarted at " + strconv.FormatInt(r.Value, 10)
}

// SQL returns the statement that restarts the sequence.
func (r *SequenceRestart) SQL() string {
	return "ALTER SEQUENCE " + r.Sequence + " RESTART WITH " + strconv.FormatInt(r.Value, 10)
}

// recorded is what checkRecorded found: ids the sequence will produce that
// are recorded (ahead), or else a warning about ids that may be.
type recorded struct {
	ahead   *RecordedIDsError
	warning string
}

// checkRecorded looks for ids the table will produce that are already
// recorded for the channel, and returns nil when there are none or when it
// cannot tell but the install changes nothing (the trigger is on the table
// already).
//
// A record counts unless its outcome is missing: the bridge replaces a
// missing record when the row appears. uuid ids do not repeat. For an
// integer column numbered by a sequence, the recorded ids that lie ahead
// of the sequence are the ones it will produce again (a sequence that
// cycles comes back to its start after its limit; that is not counted).
// For text ids, or integers with no sequence, notified cannot tell what
// the table will produce: when the trigger is new on the table and the
// channel has records (the table was created again, or its records come
// from another table), the warning says so.
func (in *install) checkRecorded(ctx context.Context, db dbtx.DBTX) (*recorded, error) {
	kind := idKindOf(in.col.typeOID)
	if kind == idUUID {
		return nil, nil
	}
	var has bool
	if err := db.QueryRow(ctx, in.sql(hasRecordsSQL), in.o.Channel).Scan(&has); err != nil {
		return nil, fmt.Errorf("look for dispatch records of channel %q: %w", in.o.Channel, err)
	}
	if !has {
		return nil, nil
	}

	var unknown string // why the ids the table will produce are unknown
	switch seq := in.col.sequence; {
	case kind == idText:
		unknown = fmt.Sprintf("its id column %q is %s", in.o.IDColumn, in.col.typeName)
	case seq == nil:
		unknown = fmt.Sprintf("its id column %q has no sequence", in.o.IDColumn)
	default:
		state, err := readSequence(ctx, db, seq)
		if err != nil {
			return nil, err
		}
		if state.unreadable != "" {
			unknown = fmt.Sprintf("role %q may not read its sequence %s (GRANT SELECT ON SEQUENCE %s TO %s lets this check run)",
				state.unreadable, printable(seq.ident), printable(seq.ident), printable(pgx.Identifier{state.unreadable}.Sanitize()))
			break
		}
		ahead, err := in.recordedAhead(ctx, db, seq, state)
		if err != nil || ahead == nil {
			return nil, err
		}
		return &recorded{ahead: ahead}, nil
	}
	if in.col.installed {
		return nil, nil
	}
	var n int64
	if err := db.QueryRow(ctx, in.sql(countRecordsSQL), in.o.Channel).Scan(&n); err != nil {
		return nil, fmt.Errorf("count dispatch records of channel %q: %w", in.o.Channel, err)
	}
	return &recorded{warning: fmt.Sprintf(
		"channel %q already has dispatch records for %d ids, and the trigger was not on %s until now: a new row whose id is one of them will be skipped as already dispatched. "+
			"notified cannot tell which ids %s will produce: %s. If the table was created again and its ids may repeat, install on a channel with no records",
		in.o.Channel, n, printable(in.tableName()), printable(in.tableName()), unknown)}, nil
}

// recordedAhead returns the recorded ids that lie ahead of the sequence,
// nil if none do.
func (in *install) recordedAhead(ctx context.Context, db dbtx.DBTX, seq *sequenceRef, s *sequenceState) (*RecordedIDsError, error) {
	next, ok := s.next()
	if !ok {
		return nil, nil // the sequence is spent: the table produces no more ids
	}
	lo, hi := next, s.max
	minLen := 0 // a length every canonical integer in [lo, hi] reaches
	if s.increment < 0 {
		lo, hi = s.min, next
	} else if next > 0 {
		minLen = len(strconv.FormatInt(next, 10))
	}
	var count int64
	var least, most *int64
	if err := db.QueryRow(ctx, in.sql(recordedAheadSQL), in.o.Channel, minLen, lo, hi).Scan(&count, &least, &most); err != nil {
		return nil, fmt.Errorf("compare the dispatch records of channel %q with sequence %s: %w", in.o.Channel, seq.ident, err)
	}
	if count == 0 {
		return nil, nil
	}
	e := &RecordedIDsError{Table: in.tableName(), Channel: in.o.Channel, Sequence: seq.ident, Next: next,
		Descending: s.increment < 0, Count: count}
	if e.Descending {
		e.Restart, e.CanRestart = *least-1, *least > s.min
	} else {
		e.Restart, e.CanRestart = *most+1, *most < s.max
	}
	return e, nil
}

// sequenceState is a sequence's parameters and where it stands.
type sequenceState struct {
	unreadable string // the role, when it may not read the sequence
	increment  int64
	min, max   int64
	lastValue  int64
	isCalled   bool
}

// readSequence reads the state of seq.
func readSequence(ctx context.Context, db dbtx.DBTX, seq *sequenceRef) (*sequenceState, error) {
	var s sequenceState
	var readable bool
	var role string
	if err := db.QueryRow(ctx, sequenceSQL, seq.oid).Scan(&readable, &role, &s.increment, &s.min, &s.max); err != nil {
		return nil, fmt.Errorf("look up sequence %s: %w", seq.ident, err)
	}
	if !readable {
		s.unreadable = role
		return &s, nil
	}
	if err := db.QueryRow(ctx, strings.ReplaceAll(sequenceStateSQL, "{sequence}", seq.ident)).Scan(&s.lastValue, &s.isCalled); err != nil {
		return nil, fmt.Errorf("read sequence %s: %w", seq.ident, err)
	}
	return &s, nil
}

// next returns the value nextval would return, or false when the sequence
// has reached its limit.
func (s *sequenceState) next() (int64, bool) {
	if !s.isCalled {
		return s.lastValue, true
	}
	if s.increment > 0 && s.lastValue > s.max-s.increment || s.increment < 0 && s.lastValue < s.min-s.increment {
		return 0, false
	}
	return s.lastValue + s.increment, true
}

// idKind is how the bridge reads an id column's type.
type idKind int

const (
	idInteger idKind = iota
	idUUID
	idText
)

// idKindOf returns the kind of one of supportedTypes.
func idKindOf(typeOID uint32) idKind {
	switch typeOID {
	case 2950:
		return idUUID
	case 25, 1043:
		return idText
	default:
		return idInteger
	}
}
