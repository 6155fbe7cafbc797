package bridge

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/notified/notified/history"
)

// newBridgeID returns a random id for notified_bridge.
func newBridgeID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// register records this bridge in notified_bridge, or refreshes its row.
func (b *Bridge) register(ctx context.Context) error {
	host, _ := os.Hostname()
	_, err := b.pool.Exec(ctx, b.q.register, b.id, b.cfg.Channel, host, os.Getpid(), b.cfg.Version, b.cfg.PollInterval)
	if err != nil {
		return fmt.Errorf("register bridge: %w", err)
	}
	return nil
}

// unregister deletes this bridge's row.
func (b *Bridge) unregister(ctx context.Context) error {
	_, err := b.pool.Exec(ctx, b.q.unregister, b.id)
	if err != nil {
		return fmt.Errorf("unregister bridge: %w", err)
	}
	return nil
}

// housekeeping keeps this bridge's row in notified_bridge fresh, every poll
// interval, and prunes history past the retention, every prune interval. On
// shutdown it deletes the row.
func (b *Bridge) housekeeping(ctx context.Context) {
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := b.unregister(cctx); err != nil {
			b.log.Warn("could not unregister; the row goes stale and is pruned after a day", slog.String("error", err.Error()))
		}
	}()
	beat := time.NewTicker(b.cfg.PollInterval)
	defer beat.Stop()
	// The first prune runs soon after start, not at once: a fleet restarted
	// together does not prune all at the same moment.
	prune := time.NewTimer(min(b.cfg.PruneInterval, time.Minute))
	defer prune.Stop()
	if b.cfg.Retention == KeepForever {
		prune.Stop()
	}
	failures := 0
	for {
		// Not cancelled by shutdown: a heartbeat cut off mid-statement
		// could still be applied after the deferred unregister, and leave
		// the row of a stopped bridge behind.
		hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		err := b.register(hctx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			failures++
			if failures == 1 || failures%10 == 0 {
				b.log.Warn("could not refresh the bridge's row in notified_bridge", slog.String("error", err.Error()))
			}
		} else {
			failures = 0
			b.signals.heartbeat.send(struct{}{})
		}
		select {
		case <-ctx.Done():
			return
		case <-beat.C:
		case <-prune.C:
			b.prune(ctx)
			prune.Reset(b.cfg.PruneInterval)
		}
	}
}

// prune deletes history older than the retention.
func (b *Bridge) prune(ctx context.Context) {
	start := time.Now()
	before := start.Add(-b.cfg.Retention)
	p, err := history.NewStore(b.pool, b.cfg.Schema).Prune(ctx, before)
	if err != nil {
		if ctx.Err() == nil {
			b.log.Warn("prune history failed; trying again at the next interval", slog.String("error", err.Error()))
		}
		return
	}
	level := slog.LevelDebug
	if p.Events+p.Jobs+p.Replays+p.Bridges > 0 {
		level = slog.LevelInfo
	}
	b.log.Log(ctx, level, "history pruned", slog.Time("before", before), slog.Int64("events", p.Events),
		slog.Int64("jobs", p.Jobs), slog.Int64("replays", p.Replays), slog.Int64("bridges", p.Bridges),
		slog.Duration("took", time.Since(start)))
	b.signals.pruned.send(p)
}
