// Package replay dispatches recorded events again, as new jobs for the
// routes their names have today: a dead letter retried, an event that
// arrived before its route, a handler's fix rolled out. It selects events
// from their dispatch records, reads their rows again, and records who
// replayed what and why in notified_replay, so the history shows it.
//
// The CLI's `notified-bridge replay` and the web UI's retry buttons use it;
// Go programs call Run.
package replay
