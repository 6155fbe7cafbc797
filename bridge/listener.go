package bridge

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/notified/notified/internal/termsafe"
)

// listen keeps one connection LISTENing on the channel, reconnecting with a
// short backoff, and wakes the drainer on every notification and after every
// (re)connect.
func (b *Bridge) listen(ctx context.Context) {
	failures := 0
	for ctx.Err() == nil {
		err := b.listenOnce(ctx, func() { failures = 0 })
		if ctx.Err() != nil {
			return
		}
		failures++
		b.metrics.reconnects.Inc()
		delay := backoff(failures, 5*time.Second)
		b.log.Warn("listener disconnected; reconnecting", slog.String("error", err.Error()), slog.Duration("retry_in", delay))
		sleep(ctx, delay)
	}
}

// listenOnce connects, LISTENs and waits for notifications until the
// connection fails or ctx is done. connected runs once LISTEN succeeded.
func (b *Bridge) listenOnce(ctx context.Context, connected func()) error {
	cc := b.pool.Config().ConnConfig.Copy()
	// Name the connection after the channel, so operators (and tests) can
	// tell which backend listens for what.
	cc.RuntimeParams["application_name"] = termsafe.Truncate("notified-bridge listener "+b.cfg.Channel, 63)
	conn, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		return fmt.Errorf("connect listener: %w", err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = conn.Close(cctx)
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{b.cfg.Channel}.Sanitize()); err != nil {
		return fmt.Errorf("listen on channel %q: %w", b.cfg.Channel, err)
	}
	// Lanes of ordered routes left for the bridge to advance.
	var schema string
	if err := conn.QueryRow(ctx, "SELECT coalesce(nullif($1, ''), current_schema())", b.cfg.Schema).Scan(&schema); err != nil {
		return fmt.Errorf("resolve the schema: %w", err)
	}
	laneChannel := schema + laneChannelSuffix
	if laneChannel == b.cfg.Channel {
		laneChannel = "" // events come first; lanes are then advanced every poll interval
	} else if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{laneChannel}.Sanitize()); err != nil {
		return fmt.Errorf("listen on channel %q: %w", laneChannel, err)
	}
	// Make sure notifications reach this connection: through a
	// transaction-pooling proxy LISTEN succeeds, but what is notified later
	// never arrives. A probe sent from another connection tells.
	probe := "notified_probe_" + b.id
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{probe}.Sanitize()); err != nil {
		return fmt.Errorf("listen on the probe channel: %w", err)
	}
	if _, err := b.pool.Exec(ctx, probeSQL, probe, "probe"); err != nil {
		return fmt.Errorf("send the listener's probe: %w", err)
	}
	probeDeadline := time.Now().Add(probeTimeout)
	probed := false
	defer func() {
		b.listening.Store(false)
		b.metrics.listener.Set(0)
	}()
	connected()
	// Anything committed while we were not listening is in the outbox,
	// and any lane left then in notified_lane_wake.
	b.kick()
	b.wakeLanes()
	for {
		wait := b.cfg.PingInterval
		if !probed {
			wait = min(wait, max(time.Until(probeDeadline), time.Millisecond))
		}
		wctx, cancel := context.WithTimeout(ctx, wait)
		n, err := conn.WaitForNotification(wctx)
		timedOut := wctx.Err() != nil
		cancel()
		if err == nil {
			if n.Channel == probe {
				if !probed {
					probed = true
					b.notificationsLost.Store(false)
					b.listening.Store(true)
					b.metrics.listener.Set(1)
					b.log.Info("listening")
				}
				continue
			}
			if laneChannel != "" && n.Channel == laneChannel {
				b.wakeLanes()
				continue
			}
			b.notified(n.Payload)
			continue
		}
		if ctx.Err() != nil {
			return nil
		}
		if !timedOut {
			return fmt.Errorf("wait for notification: %w", err)
		}
		if !probed && !time.Now().Before(probeDeadline) && !b.notificationsLost.Swap(true) {
			b.log.Error("the listener receives no notifications: its connection seems to go through a transaction-pooling proxy such as PgBouncer in transaction mode",
				slog.String("effect", "events are dispatched only every poll interval"),
				slog.String("fix", "connect the bridge to Postgres directly or through a session-pooling proxy, or run with --poll-only"),
				slog.Duration("poll_interval", b.cfg.PollInterval))
		}
		// Quiet for a while: make sure the server is still there, so a
		// silently dead connection is noticed.
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err = conn.Ping(pctx)
		cancel()
		if err != nil && ctx.Err() == nil {
			return fmt.Errorf("ping listener connection: %w", err)
		}
	}
}

// probeTimeout is how long the listener waits for its probe notification
// before it reports that notifications do not reach it.
const probeTimeout = 5 * time.Second
