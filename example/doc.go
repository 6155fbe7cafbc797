// Package example holds three realistic handlers to copy into a worker
// process: [SendWelcomeEmail] sends a mail over SMTP, [WriteAudit] writes a
// row to Postgres and [CallWebhook] POSTs the event to an HTTP endpoint. Each
// shows how to sort failures into the two kinds River knows: an error that
// may go away (a timeout, a refused connection, a 4xx SMTP reply, an HTTP 429
// or 5xx) is returned as it is and the job is retried with backoff; an error
// that will not (a row without an email address, a 5xx SMTP reply, an HTTP
// 404) is wrapped with [jobs.Permanent] and the job is cancelled at once.
//
// [Register] registers all three on a River worker set, [Routes] returns the
// routes that send events to them, and [EnsureAuditTable] creates the table
// WriteAudit writes to. cmd/example-worker wires them into a process:
//
//	workers := river.NewWorkers()
//	if err := example.Register(workers, example.Config{
//		Pool:       pool,
//		Schema:     "notified",
//		SMTPAddr:   "mail.internal:25",
//		WebhookURL: "https://orders.example.com/hooks/notified",
//	}); err != nil {
//		return err
//	}
//	if err := routes.NewStore(pool, "notified").Ensure(ctx, example.Routes()...); err != nil {
//		return err
//	}
//
// [MailSink] is a tiny in-process SMTP server for demos and tests.
//
// # Idempotency
//
// notified inserts exactly one job per event and route, but River runs a job
// at least once: a worker that dies after the side effect and before the job
// is marked completed runs it again. Each handler here makes a repeat
// harmless in the way its target allows:
//
//   - WriteAudit inserts with ON CONFLICT (event_id, event_name) DO NOTHING,
//     so a second run inserts nothing and reports {"inserted": false}.
//   - CallWebhook sends an Idempotency-Key header,
//     "<channel>:<event id>:call_webhook", the same on every attempt, for the
//     receiver to drop repeats.
//   - SendWelcomeEmail sets a Message-ID derived from the event, the same on
//     every attempt; SMTP has no idempotency key, so a mail may still arrive
//     twice. Where that matters, record what was sent in your own table,
//     keyed on the event, in the same way as WriteAudit.
//
// Key your own side effects on the event (jobs.Event's Channel and ID) and
// the handler kind, never on the River job id: a replayed event gets a new
// job.
package example
