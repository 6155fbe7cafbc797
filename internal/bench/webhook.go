package bench

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/riverqueue/river"

	"github.com/notified/notified/jobs"
	"github.com/notified/notified/routes"
)

// The webhook mode's secret: every delivery is signed, as a real one is.
const (
	benchSecret    = "whsec_YmVuY2gtd2ViaG9vay1zZWNyZXQtMDEyMzQ1Njc="
	benchSecretEnv = routes.SecretEnvPrefix + "_BENCH"
)

// receiver is the webhook mode's endpoint: it reads each delivery and
// answers 204, counting them.
type receiver struct {
	srv  *http.Server
	url  string
	seen atomic.Int64
}

func startReceiver(count func()) (*receiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("webhook receiver: %w", err)
	}
	rc := &receiver{url: "http://" + ln.Addr().String()}
	rc.srv = &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		rc.seen.Add(1)
		count()
		w.WriteHeader(http.StatusNoContent)
	})}
	go func() { _ = rc.srv.Serve(ln) }()
	return rc, nil
}

func (rc *receiver) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = rc.srv.Shutdown(ctx)
}

// hookURL is the URL of the i-th route's webhook.
func (rc *receiver) hookURL(i int) string { return rc.url + "/hooks/" + strconv.Itoa(i) }

// measureGoThenWebhooks measures the run with Go handlers first, keeps it
// as HandledGo, then makes the routes webhook routes to a receiver in this
// process, for the measure that follows.
func (r *runner) measureGoThenWebhooks(ctx context.Context, res *Result) error {
	r.newPhase()
	goRun := *res
	r.pass = "Go handlers"
	if err := r.measure(ctx, &goRun); err != nil {
		return err
	}
	if err := r.verify(ctx, &goRun); err != nil {
		return fmt.Errorf("Go handlers' phase: %w", err)
	}
	res.HandledGo = goRun.Handled
	r.newPhase()
	if err := r.s.reset(ctx); err != nil {
		return err
	}
	rc, err := startReceiver(func() { r.handled.Add(1) })
	if err != nil {
		return err
	}
	r.receiver = rc
	store := routes.NewStore(r.s.pool, r.s.schema)
	for i := range r.o.Routes {
		if _, err := store.Remove(ctx, eventName, routeKind(i)); err != nil {
			return err
		}
		hook := routes.Route{Event: eventName, Webhook: rc.hookURL(i), SecretEnv: benchSecretEnv, Queue: river.QueueDefault}
		if r.o.Filters {
			hook.Where = routeFilter(i)
		}
		if err := store.Add(ctx, hook); err != nil {
			return fmt.Errorf("make the bench's routes webhooks: %w", err)
		}
	}
	res.Webhook = true
	r.pass = "webhooks"
	return nil
}

// registerWebhooks registers the built-in webhook handler on ws, allowed to
// reach the receiver on loopback, with the bench's secret.
func registerWebhooks(ws *river.Workers) error {
	err := jobs.RegisterWebhooks(ws, jobs.WebhookOptions{
		AllowCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
		LookupSecret: func(name string) (string, bool) {
			return benchSecret, name == benchSecretEnv
		},
	})
	if err != nil {
		return fmt.Errorf("register the webhook handler: %w", err)
	}
	return nil
}
