package bridge

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"
)

// TestRowFault: only a failure of the fetch or the insert, with an SQLSTATE
// that belongs to a row's data, splits a batch; infrastructure errors retry
// it whole.
func TestRowFault(t *testing.T) {
	t.Parallel()
	seqs := []int64{1, 2, 3}
	pg := func(code string) error {
		return fmt.Errorf("insert 3 jobs: %w", &pgconn.PgError{Code: code, Message: "m"})
	}
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"unsupported unicode escape in insert", &stepError{step: stepInsert, seqs: seqs, err: pg("22P05")}, true},
		{"numeric overflow in fetch", &stepError{step: stepFetch, seqs: seqs, err: pg("22003")}, true},
		{"program limit", &stepError{step: stepInsert, seqs: seqs, err: pg("54000")}, true},
		{"data corrupted", &stepError{step: stepFetch, seqs: seqs, err: pg("XX001")}, true},
		{"statement timeout", &stepError{step: stepFetch, seqs: seqs, err: pg("57014")}, true},
		{"internal error", &stepError{step: stepFetch, seqs: seqs, err: pg("XX000")}, false},
		{"admin shutdown", &stepError{step: stepInsert, seqs: seqs, err: pg("57P01")}, false},
		{"lock timeout", &stepError{step: stepFetch, seqs: seqs, err: pg("55P03")}, false},
		{"deadlock", &stepError{step: stepInsert, seqs: seqs, err: pg("40P01")}, false},
		{"undefined function (table changed)", &stepError{step: stepFetch, seqs: seqs, err: pg("42883")}, false},
		{"connection lost", &stepError{step: stepFetch, seqs: seqs, err: errors.New("unexpected EOF")}, false},
		{"client deadline", &stepError{step: stepInsert, seqs: seqs, err: context.DeadlineExceeded}, false},
		{"data exception outside the data steps", pg("22P05"), false},
		{"no rows claimed", &stepError{step: stepInsert, err: pg("22P05")}, false},
	} {
		got, ok := rowFault(tc.err)
		require.Equal(t, tc.want, ok, tc.name)
		if ok {
			require.Equal(t, seqs, got, tc.name)
		}
	}
}

// TestPoisonReason names the row, the table and the database's error.
func TestPoisonReason(t *testing.T) {
	t.Parallel()
	err := &stepError{step: stepInsert, seqs: []int64{1}, err: fmt.Errorf("insert 1 jobs: %w",
		&pgconn.PgError{Code: "22P05", Message: "unsupported Unicode escape sequence"})}
	require.Equal(t, "row 42 of app.events cannot become a job: unsupported Unicode escape sequence (SQLSTATE 22P05); fix the row and replay the event",
		poisonReason("app.events", "42", err))
	timeout := &pgconn.PgError{Code: "57014", Message: "canceling statement due to statement timeout"}
	require.Contains(t, poisonReason("events", "7", timeout), "ran past the batch timeout: canceling statement due to statement timeout (SQLSTATE 57014)")
}
