// Package demo runs notified end to end in one process, for a first look:
// a database (the one given, or a throwaway server started from the Postgres
// binaries on the machine), the capture trigger on a sample events table,
// the example handlers' routes, a bridge, a worker with the example
// handlers, a mail sink and a webhook endpoint that fail now and then, and
// sample events. It shows the jobs flowing, then the history.
package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"

	"github.com/notified/notified/bridge"
	"github.com/notified/notified/example"
	"github.com/notified/notified/history"
	"github.com/notified/notified/internal/dbtx"
	"github.com/notified/notified/internal/ident"
	"github.com/notified/notified/internal/pgcluster"
	"github.com/notified/notified/internal/termsafe"
	"github.com/notified/notified/internal/webhook"
	"github.com/notified/notified/jobs"
	"github.com/notified/notified/lanes"
	"github.com/notified/notified/migrations"
	"github.com/notified/notified/routes"
	"github.com/notified/notified/trigger"
)

// Options configure a demo run.
type Options struct {
	// DatabaseURL is the database to use; empty starts a throwaway server.
	// The demo works in a schema of its own, dropped at the end.
	DatabaseURL string
	// Events is how many sample events to insert; 0 means 24.
	Events int
	// Keep keeps the demo's schema (or throwaway server's directory is
	// still removed) for a look in psql afterwards.
	Keep bool
	// Timeout bounds the wait for every job to finish; 0 means 2 minutes.
	Timeout time.Duration
	// Out receives the progress and the history.
	Out io.Writer
	// Live rewrites one progress line in place (for a terminal) instead of
	// printing a line per second.
	Live bool
	// Logger receives the components' logs; nil discards them.
	Logger *slog.Logger
}

// ErrNoPostgres says no database was given and no Postgres binaries were
// found to start one.
var ErrNoPostgres = errors.New("no database: DATABASE_URL is not set and no Postgres server binaries (initdb, pg_ctl) were found on PATH or under /usr/lib/postgresql/*/bin; " +
	"install Postgres (Debian/Ubuntu: apt-get install postgresql; Fedora: dnf install postgresql-server; macOS: brew install postgresql@17) or set DATABASE_URL")

// Run runs the demo until every job has finished (or Timeout), prints the
// history, and cleans up. Cancelling ctx stops it cleanly.
func Run(ctx context.Context, o Options) (err error) {
	o = o.withDefaults()
	cleanup := context.WithoutCancel(ctx)
	say := func(format string, args ...any) { fmt.Fprintf(o.Out, format+"\n", args...) }

	// 1. A database.
	url := o.DatabaseURL
	if url == "" {
		cluster, err := startPostgres(ctx, say)
		if err != nil {
			return err
		}
		defer func() {
			if serr := cluster.Stop(cleanup); serr != nil && err == nil {
				err = fmt.Errorf("stop the throwaway Postgres: %w", serr)
			}
		}()
		url = cluster.URL()
	}
	pool, err := connect(ctx, url)
	if err != nil {
		return err
	}
	defer pool.Close()

	// 2. notified's tables, a sample events table with the capture
	// trigger, the example audit table and the routes.
	schema := ident.RandomName("notified_demo_")
	d := &demo{o: o, say: say, pool: pool, schema: schema,
		// A channel of its own: a bridge already running on this
		// database never hears the demo's notifications.
		channel: schema}
	defer func() {
		if derr := d.removeSchema(cleanup); derr != nil && err == nil {
			err = derr
		}
	}()
	if err := d.setUp(ctx); err != nil {
		return err
	}

	return d.run(ctx) // steps 3 to 7
}

func (o Options) withDefaults() Options {
	if o.Events <= 0 {
		o.Events = 24
	}
	if o.Timeout <= 0 {
		o.Timeout = 2 * time.Minute
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// startPostgres starts a throwaway server from the Postgres binaries on the
// machine.
func startPostgres(ctx context.Context, say func(format string, args ...any)) (*pgcluster.Cluster, error) {
	say("DATABASE_URL is not set: starting a throwaway Postgres from the binaries on this machine...")
	cluster, err := pgcluster.Start(ctx)
	if errors.Is(err, pgcluster.ErrNoBinaries) {
		return nil, ErrNoPostgres
	}
	if err != nil {
		return nil, fmt.Errorf("start a throwaway Postgres: %w", err)
	}
	say("  running on %s, in %s (removed on exit)", strings.TrimPrefix(cluster.URL(), "postgres://"), cluster.Dir())
	return cluster, nil
}

// connect opens a pool on url and checks that the database answers.
func connect(ctx context.Context, url string) (*pgxpool.Pool, error) {
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to the database: %w", err)
	}
	return pool, nil
}

// demo is one run's database, schema and channel.
type demo struct {
	o       Options
	say     func(format string, args ...any)
	pool    *pgxpool.Pool
	schema  string
	channel string
}

// setUp creates the demo's schema with River's and notified's tables, an
// events table with the capture trigger, the example audit table and the
// example handlers' routes.
func (d *demo) setUp(ctx context.Context) error {
	d.say("setting up schema %s: River's and notified's tables, an events table with the capture trigger, routes", d.schema)
	if _, err := migrations.Migrate(ctx, d.pool, d.schema); err != nil {
		return err
	}
	if _, err := d.pool.Exec(ctx, dbtx.InSchema(d.schema, createEventsSQL)); err != nil {
		return fmt.Errorf("create the events table: %w", err)
	}
	if _, err := trigger.Install(ctx, d.pool, trigger.Options{Schema: d.schema, Table: d.schema + ".events", Channel: d.channel}); err != nil {
		return err
	}
	if err := example.EnsureAuditTable(ctx, d.pool, d.schema); err != nil {
		return err
	}
	rs := demoRoutes()
	if err := routes.NewStore(d.pool, d.schema).Ensure(ctx, rs...); err != nil {
		return err
	}
	for _, r := range rs {
		if r.OrderedBy != "" {
			d.say("  route %s -> %s, ordered by %s: one customer's orders one at a time, in the order they were committed", r.Event, r.Kind, r.OrderedBy)
			continue
		}
		d.say("  route %s -> %s", r.Event, r.Kind)
	}
	return nil
}

// demoRoutes are the example handlers' routes, with the webhook call of an
// order ordered by its customer (the events' email).
func demoRoutes() []routes.Route {
	rs := example.Routes()
	for i, r := range rs {
		if r.Kind == (example.CallWebhook{}).Kind() {
			rs[i].OrderedBy = "$.email"
		}
	}
	return rs
}

// removeSchema drops the demo's schema, or with Keep says how to look at
// it.
func (d *demo) removeSchema(ctx context.Context) error {
	if d.o.Keep {
		d.say("\nschema %s kept: look around with psql (DROP SCHEMA %s CASCADE when done)", d.schema, d.schema)
		return nil
	}
	if _, err := d.pool.Exec(ctx, dbtx.InSchema(d.schema, dropSchemaSQL)); err != nil {
		return fmt.Errorf("drop the demo schema %s: %w", d.schema, err)
	}
	return nil
}

// run starts the outside world, the bridge and a worker, inserts the sample
// events, shows them flow and then what happened. What it starts is stopped
// when it returns.
func (d *demo) run(ctx context.Context) error {
	cleanup := context.WithoutCancel(ctx)

	// 3. The outside world: a mail sink that greylists the first two
	// mails, and a webhook endpoint that fails now and then.
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	out, err := startOutside(runCtx, &wg)
	if err != nil {
		return err
	}
	defer out.sink.Close()
	defer func() {
		stop() // the bridge and the sample inserts stop with runCtx
		wg.Wait()
	}()
	defer func() { _ = out.hook.Shutdown(cleanup) }()
	d.say("mail sink on %s (greylists the first 2 mails), webhook endpoint on %s (503 on the first try of every third order, 404 for order totals of 404)",
		out.sink.Addr(), out.hookAddr)

	// A webhook route, delivered by the built-in webhook handler, signed,
	// for the orders its filter keeps.
	hook := routes.Route{Event: "order_placed", Webhook: "http://" + out.hookAddr + "/hooks/signed", SecretEnv: demoSecretEnv,
		Where: "$.total >= 50"}
	if err := routes.NewStore(d.pool, d.schema).Ensure(ctx, hook); err != nil {
		return err
	}
	d.say("route order_placed -> webhook %s where %s (signed with $%s, delivered by the built-in webhook handler)",
		hook.Webhook, hook.Where, demoSecretEnv)

	// 4. The bridge and a worker.
	b, err := d.startBridge(runCtx, &wg)
	if err != nil {
		return err
	}
	client, err := d.startWorker(runCtx, out)
	if err != nil {
		return err
	}
	defer stopWorker(cleanup, client)
	if err := waitListening(ctx, b); err != nil {
		return err
	}

	// 5. Sample events, committed the way applications do: a row per
	// event, in a few transactions.
	samples := sampleEvents(d.o.Events)
	d.say("\ninserting %d events: %s", len(samples), describe(samples))
	insertErr := make(chan error, 1)
	wg.Go(func() {
		if err := d.insertSamples(runCtx, samples); err != nil {
			insertErr <- err
		}
	})

	// 6. Watch them flow, while they are inserted.
	store := history.NewStore(d.pool, d.schema)
	if err := watch(ctx, d.o, store, d.channel, len(samples), insertErr); err != nil {
		return err
	}

	// 7. What happened.
	return report(ctx, d.o, d.pool, store, d.schema, d.channel, out.sink)
}

// The demo's webhook secret, and the variable its route names; the worker
// reads it from here rather than from the environment.
const (
	demoSecret    = "whsec_ZGVtby1zZWNyZXQtbm90LWZvci1wcm9kdWN0aW9u"
	demoSecretEnv = "NOTIFIED_WEBHOOK_SECRET_DEMO"
)

// outside is the demo's outside world: a mail sink that greylists the
// first two mails, and a webhook endpoint that fails now and then.
type outside struct {
	sink     *example.MailSink
	hook     *http.Server
	hookAddr string // host:port
}

// startOutside starts the mail sink, which closes when ctx is done, and the
// webhook endpoint, served on a goroutine of wg until hook is shut down.
func startOutside(ctx context.Context, wg *sync.WaitGroup) (*outside, error) {
	sink, err := example.StartMailSink(ctx, "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	sink.FailNext(2, 451, "4.7.1 greylisted, try again later")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		_ = sink.Close()
		return nil, fmt.Errorf("webhook endpoint: %w", err)
	}
	hook := &http.Server{Handler: newFlakyEndpoint(), ReadHeaderTimeout: 5 * time.Second}
	wg.Go(func() { _ = hook.Serve(ln) })
	return &outside{sink: sink, hook: hook, hookAddr: ln.Addr().String()}, nil
}

// startBridge starts a bridge on the demo's table and channel, running on a
// goroutine of wg until ctx is done.
func (d *demo) startBridge(ctx context.Context, wg *sync.WaitGroup) (*bridge.Bridge, error) {
	b, err := bridge.New(ctx, d.pool, bridge.Config{Schema: d.schema, Table: d.schema + ".events", Channel: d.channel,
		PollInterval: 500 * time.Millisecond, Retention: bridge.KeepForever, Logger: d.o.Logger})
	if err != nil {
		return nil, err
	}
	wg.Go(func() { _ = b.Run(ctx) })
	return b, nil
}

// startWorker starts a River client working the example handlers' jobs
// against the outside world, retrying failed jobs after a second.
func (d *demo) startWorker(ctx context.Context, out *outside) (*river.Client[pgx.Tx], error) {
	workers := river.NewWorkers()
	if err := example.Register(workers, example.Config{Pool: d.pool, Schema: d.schema, SMTPAddr: out.sink.Addr(),
		WebhookURL: "http://" + out.hookAddr + "/hooks/orders", WebhookTimeout: 2 * time.Second}); err != nil {
		return nil, err
	}
	// The endpoint is on loopback, which webhook routes may not reach
	// unless allowed.
	if err := jobs.RegisterWebhooks(workers, jobs.WebhookOptions{Timeout: 2 * time.Second,
		AllowCIDRs:   []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
		LookupSecret: func(name string) (string, bool) { return demoSecret, name == demoSecretEnv }}); err != nil {
		return nil, err
	}
	client, err := river.NewClient(riverpgxv5.New(d.pool), &river.Config{
		Schema: d.schema, Workers: workers, Logger: d.o.Logger,
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 10}, routes.WebhookQueue: {MaxWorkers: 10}},
		FetchCooldown:     50 * time.Millisecond,
		FetchPollInterval: 100 * time.Millisecond,
		RetryPolicy:       quickRetry{},
	})
	if err != nil {
		return nil, fmt.Errorf("river client: %w", err)
	}
	if err := client.Start(ctx); err != nil {
		return nil, fmt.Errorf("start the worker: %w", err)
	}
	return client, nil
}

// stopWorker gives the worker's running jobs 10s to finish, then cancels
// them.
func stopWorker(ctx context.Context, client *river.Client[pgx.Tx]) {
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := client.Stop(sctx); err != nil {
		_ = client.StopAndCancel(ctx)
	}
}

// waitListening waits up to 10s for b to listen for notifications.
func waitListening(ctx context.Context, b *bridge.Bridge) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for !b.Listening() {
		select {
		case <-ctx.Done():
			return errors.New("the bridge did not start listening within 10s")
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

// insertSamples inserts samples six to a transaction, 150ms apart, until
// they are all in or ctx is done.
func (d *demo) insertSamples(ctx context.Context, samples []sample) error {
	for start := 0; start < len(samples); start += 6 {
		batch := samples[start:min(start+6, len(samples))]
		if err := insert(ctx, d.pool, d.schema, batch); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(150 * time.Millisecond):
		}
	}
	return nil
}

// quickRetry retries after one second, not River's backoff of attempt⁴
// seconds, so the demo shows retries succeeding within its run.
type quickRetry struct{}

func (quickRetry) NextRetry(*rivertype.JobRow) time.Time { return time.Now().Add(time.Second) }

// sample is one event to insert.
type sample struct {
	name  string
	email *string
	total *float64
}

func sampleEvents(n int) []sample {
	out := make([]sample, 0, n)
	for i := range n {
		switch i % 4 {
		case 0, 2:
			email := fmt.Sprintf("user%d@example.com", i+1)
			if i == 6 {
				email = "" // no address: cancelled at once, not retried
			}
			out = append(out, sample{name: "user_signed_up", email: &email})
		case 1:
			total := float64(10 + 7*i)
			if i == 5 {
				total = 404 // the endpoint answers 404: cancelled
			}
			// Two customers, taking turns: each one's orders are a lane.
			customer := fmt.Sprintf("customer%d@example.com", i/4%2+1)
			out = append(out, sample{name: "order_placed", email: &customer, total: &total})
		case 3:
			out = append(out, sample{name: "page_viewed"}) // no route
		}
	}
	return out
}

// describe counts the samples by name.
func describe(s []sample) string {
	count := map[string]int{}
	for _, e := range s {
		count[e.name]++
	}
	return countsText(count)
}

// countsText lists counts by name in the names' order, as "2 order_placed,
// 4 user_signed_up".
func countsText[N int | int64](counts map[string]N) string {
	names := slices.Sorted(maps.Keys(counts))
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = fmt.Sprintf("%d %s", counts[n], n)
	}
	return strings.Join(parts, ", ")
}

// insert inserts batch into the events table of schema, in one
// transaction.
func insert(ctx context.Context, pool *pgxpool.Pool, schema string, batch []sample) error {
	q := dbtx.InSchema(schema, insertEventSQL)
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		for _, e := range batch {
			var email any
			if e.email != nil && *e.email != "" {
				email = *e.email
			}
			if _, err := tx.Exec(ctx, q, e.name, email, e.total); err != nil {
				return fmt.Errorf("insert a sample event: %w", err)
			}
		}
		return nil
	})
}

// watch prints the jobs' progress until every event is dispatched and every
// job has finished.
func watch(ctx context.Context, o Options, store *history.Store, channel string, events int, insertErr <-chan error) error {
	deadline := time.Now().Add(o.Timeout)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	lastPrint := time.Time{}
	for {
		st, err := store.Status(ctx, channel, time.Hour)
		if err != nil {
			return err
		}
		recorded := 0
		for _, n := range st.LastHour {
			recorded += int(n)
		}
		states := map[string]int64{}
		for _, h := range st.Handlers {
			for s, n := range h.States {
				states[s] += n
			}
		}
		live := states["available"] + states["pending"] + states["scheduled"] + states["retryable"] + states["running"]
		line := fmt.Sprintf("events %d/%d recorded · jobs: %d completed, %d retrying, %d running, %d waiting, %d cancelled, %d discarded",
			recorded, events, states["completed"], states["retryable"], states["running"],
			states["available"]+states["pending"]+states["scheduled"], states["cancelled"], states["discarded"])
		done := recorded >= events && st.Backlog == 0 && live == 0
		switch {
		case o.Live:
			fmt.Fprintf(o.Out, "\r%s   ", line)
			if done {
				fmt.Fprintln(o.Out)
			}
		case done || time.Since(lastPrint) >= time.Second:
			fmt.Fprintln(o.Out, line)
			lastPrint = time.Now()
		}
		if done {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("jobs still running after %s: see them with `notified-bridge status --schema ...` (run with --keep)", o.Timeout)
		}
		select {
		case <-ctx.Done():
			if o.Live {
				fmt.Fprintln(o.Out)
			}
			return ctx.Err()
		case err := <-insertErr:
			return err
		case <-tick.C:
		}
	}
}

// report prints the jobs per handler and the history of a few telling
// events.
func report(ctx context.Context, o Options, pool *pgxpool.Pool, store *history.Store, schema, channel string, sink *example.MailSink) error {
	st, err := store.Status(ctx, channel, time.Hour)
	if err != nil {
		return err
	}
	fmt.Fprintln(o.Out, "\njobs per handler")
	for _, h := range st.Handlers {
		fmt.Fprintf(o.Out, "  %-20s %s\n", termsafe.String(h.Handler), countsText(h.States))
	}
	fmt.Fprintf(o.Out, "mails received by the sink: %d\n", len(sink.Messages()))

	// One event of each story: retried then completed, cancelled, a route
	// its filter skipped, unrouted.
	var ids []string
	for _, q := range []string{retriedEventSQL, cancelledEventsSQL, skippedEventSQL, unroutedEventSQL} {
		rows, err := pool.Query(ctx, dbtx.InSchema(schema, q))
		if err != nil {
			return fmt.Errorf("pick events to show: %w", err)
		}
		got, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return fmt.Errorf("pick events to show: %w", err)
		}
		for _, id := range got {
			if !slices.Contains(ids, id) {
				ids = append(ids, id)
			}
		}
	}
	for _, id := range ids {
		ev, err := store.Event(ctx, channel, id)
		if err != nil {
			return err
		}
		writeEvent(o.Out, ev)
	}
	if o.DatabaseURL != "" {
		cli := fmt.Sprintf("notified-bridge --schema %s history --table %s.events --channel %s ID", schema, schema, channel)
		if o.Keep {
			fmt.Fprintf(o.Out, "\nthe same with the CLI: %s\n", cli)
		} else {
			fmt.Fprintf(o.Out, "\nrun with --keep to look at it afterwards, e.g. with %s\n", cli)
		}
	}
	return nil
}

// writeEvent prints an event's story; text from the database goes through
// termsafe, as in the CLI's history.
func writeEvent(w io.Writer, ev *history.Event) {
	name := ""
	if ev.Name != nil {
		name = *ev.Name
	}
	fmt.Fprintf(w, "\nevent %s (%s): %s", termsafe.String(ev.ID), termsafe.String(name), termsafe.String(ev.Outcome))
	if ev.Reason != nil {
		fmt.Fprintf(w, ": %s", termsafe.String(*ev.Reason))
	}
	fmt.Fprintln(w)
	for _, j := range ev.Jobs {
		detail := ""
		switch {
		case j.State == history.StateCompleted && len(j.Output) > 0:
			var compact bytes.Buffer
			if json.Compact(&compact, j.Output) != nil {
				compact.Reset()
				compact.Write(j.Output)
			}
			detail = "output " + compact.String()
			if j.LastError != nil {
				detail += ", after: " + termsafe.Shorten(termsafe.OneLine(*j.LastError), errorWidth)
			}
		case j.LastError != nil:
			detail = termsafe.Shorten(termsafe.OneLine(*j.LastError), errorWidth)
		}
		if j.Lane != "" {
			detail = "lane " + j.Lane + "  " + detail
		}
		fmt.Fprintf(w, "  job %-4d %-20s %-10s attempt %d/%d  %s\n", j.ID, termsafe.String(j.Handler), termsafe.String(j.State),
			j.Attempt, j.MaxAttempts, termsafe.String(detail))
		for _, e := range j.LaneEvents {
			switch {
			case e.Action != lanes.ActionContinued:
			case e.NextJobID != nil:
				fmt.Fprintf(w, "           its lane went on past it, to job %d\n", *e.NextJobID)
			default:
				fmt.Fprintf(w, "           its lane went on past it (no job was waiting behind it)\n")
			}
		}
	}
	for _, r := range ev.Routes {
		if r.Skipped != "" {
			fmt.Fprintf(w, "  no job   %-20s %s (%s)\n", termsafe.String(r.Handler), termsafe.String(r.SkipText()), termsafe.String(r.Where))
		}
	}
}

// errorWidth is how many characters of a job's last error the demo shows.
const errorWidth = 120

// flakyEndpoint is the webhooks' receiving end, /hooks/orders for the
// example's Go handler and /hooks/signed for the webhook route, whose
// signature it checks (401 if it does not verify): it answers 503 to the
// first try of every third order, 404 to orders whose total is 404, and 200
// otherwise.
type flakyEndpoint struct {
	mu    sync.Mutex
	tries map[string]int
}

func newFlakyEndpoint() *flakyEndpoint { return &flakyEndpoint{tries: map[string]int{}} }

func (f *flakyEndpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, "read body: "+err.Error(), http.StatusBadRequest)
		return
	}
	if r.URL.Path == "/hooks/signed" {
		if err := webhook.Verify(demoSecret, r.Header, raw, 5*time.Minute); err != nil {
			http.Error(w, "bad signature: "+err.Error(), http.StatusUnauthorized)
			return
		}
	}
	var body struct {
		EventID string `json:"event_id"`
		Data    struct {
			Total float64 `json:"total"`
		} `json:"data"`
	}
	if err := json.Unmarshal(raw, &body); err != nil {
		http.Error(w, "bad JSON: "+err.Error(), http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	f.tries[r.URL.Path+" "+body.EventID]++
	try := f.tries[r.URL.Path+" "+body.EventID]
	f.mu.Unlock()
	var id int
	_, _ = fmt.Sscan(body.EventID, &id)
	switch {
	case body.Data.Total == 404:
		http.Error(w, "no such order", http.StatusNotFound)
	case id%3 == 0 && try == 1:
		http.Error(w, "busy, try again", http.StatusServiceUnavailable)
	default:
		w.WriteHeader(http.StatusOK)
		_, _ = fmt.Fprintf(w, `{"received": %q}`, body.EventID)
	}
}
