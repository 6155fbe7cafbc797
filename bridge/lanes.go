package bridge

import (
	"context"
	"log/slog"
	"time"
)

// Lanes of ordered routes move on in the transaction that finalizes their
// head job (see migration 005). When that transaction, River's, finds the
// lane held by a dispatch that is appending to it, it does not wait: it
// leaves the lane in notified_lane_wake and notifies <schema>.notified_lane.
// The next dispatch that opens the lane moves it on, and the bridge's lane
// waker moves on those that are free when the listener hears, after each
// of its dispatches with ordered jobs commits, and every poll interval. The
// waker never waits for a lane either: a held one keeps its wake row.

// laneChannelSuffix is the end of the channel the finalizing transactions
// notify, after the schema and a dot.
const laneChannelSuffix = ".notified_lane"

// wakeLanes asks the lane waker to run, without blocking.
func (b *Bridge) wakeLanes() {
	select {
	case b.laneWake <- struct{}{}:
	default:
	}
}

// laneWaker advances the lanes left to wake on every wake-up and every poll
// interval, until ctx is done.
func (b *Bridge) laneWaker(ctx context.Context) {
	ticker := time.NewTicker(b.cfg.PollInterval)
	defer ticker.Stop()
	failures := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-b.laneWake:
		case <-ticker.C:
		}
		n, err := b.advanceLanes(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			failures++
			if failures == 1 || failures%10 == 0 {
				b.log.Warn("could not advance the lanes left by finalized jobs; trying again at the next poll interval", slog.String("error", err.Error()))
			}
			continue
		}
		failures = 0
		if n > 0 {
			b.log.Debug("lanes advanced", slog.Int("lanes", n))
			b.metrics.lanesWoken.Add(float64(n))
		}
	}
}

// advanceLanes runs one pass of the lane waker and returns how many lanes
// it advanced.
func (b *Bridge) advanceLanes(ctx context.Context) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, b.cfg.BatchTimeout)
	defer cancel()
	var n int
	err := b.pool.QueryRow(ctx, b.q.wakeLanes).Scan(&n)
	return n, err
}
