// Package chaos holds a chaos test of notified-bridge: producers insert,
// roll back and hand-notify events against a throwaway Postgres while a
// fault goroutine kills bridges, runs several at once, terminates their
// backends, restarts Postgres, changes routes, locks the events table and
// kills River workers. At the end it checks, against the database, that
// every committed event got exactly one job per route it had when it was
// dispatched, and nothing else; and that the jobs of the ordered route ran
// one at a time per key, in the order their events were committed.
//
// The workers are chaos/internal/chaosworker, built by the test like the
// bridge.
//
// The package has no code of its own: everything is in its tests. Run it with
//
//	go test ./chaos -run TestChaos -chaos.duration 2m -v
//
// See docs/chaos.md.
package chaos
