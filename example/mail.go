package example

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"strings"
	"time"

	"github.com/notified/notified/jobs"
)

// smtpTimeout bounds one delivery attempt when the job's context has no
// deadline of its own.
const smtpTimeout = 30 * time.Second

// mailer is the handler of SendWelcomeEmail.
type mailer struct {
	cfg Config
}

// welcomeRow is what SendWelcomeEmail reads from the event row.
type welcomeRow struct {
	Email string `json:"email"`
	// Name is the recipient's name, when the row has one. In an events
	// table the name column usually holds the event's name; that is not
	// a person's name and is ignored.
	Name string `json:"name"`
}

// handle sends the welcome mail. A row that has no valid address, and a
// permanent (5xx) SMTP reply, cancel the job; anything else is retried.
func (m *mailer) handle(ctx context.Context, ev jobs.Event) (jobs.Result, error) {
	var row welcomeRow
	if err := ev.Decode(&row); err != nil {
		return jobs.Result{}, jobs.Permanent(err)
	}
	if strings.TrimSpace(row.Email) == "" {
		return jobs.Result{}, jobs.Permanent(fmt.Errorf("event %s (%s) has no email", ev.ID, ev.Name))
	}
	to, err := parseAddress(row.Email)
	if err != nil {
		return jobs.Result{}, jobs.Permanent(fmt.Errorf("event %s (%s): email %q is not a mail address: %w", ev.ID, ev.Name, row.Email, err))
	}
	from, err := parseAddress(m.cfg.MailFrom)
	if err != nil { // validated by Register
		return jobs.Result{}, jobs.Permanent(fmt.Errorf("sender %q: %w", m.cfg.MailFrom, err))
	}
	name := row.Name
	if name == ev.Name {
		name = ""
	}
	msg := welcomeMessage(from, to, name, messageID(ev, from))
	if err := sendMail(ctx, m.cfg.SMTPAddr, from.Address, to.Address, msg); err != nil {
		err = fmt.Errorf("send welcome mail for event %s to %s: %w", ev.ID, to.Address, err)
		var reply *textproto.Error
		if errors.As(err, &reply) && reply.Code >= 500 && reply.Code < 600 {
			// The server refused for good (no such mailbox, policy).
			return jobs.Result{}, jobs.Permanent(err)
		}
		// A connection error or a 4xx reply (greylisting, mailbox busy):
		// retried with backoff.
		return jobs.Result{}, err
	}
	return jobs.Success(map[string]string{"sent_to": to.Address}), nil
}

// parseAddress parses one address, "ada@example.com" or
// "Ada <ada@example.com>"; it rejects line breaks, so the result is safe in
// a header and an SMTP command.
func parseAddress(s string) (*mail.Address, error) {
	a, err := mail.ParseAddress(s)
	if err != nil {
		return nil, err
	}
	if !strings.Contains(a.Address, "@") {
		return nil, errors.New("no @ in address")
	}
	return a, nil
}

// messageID is the same on every attempt for the event, so a receiver or a
// mail archive can recognize a repeat.
func messageID(ev jobs.Event, from *mail.Address) string {
	domain := from.Address[strings.LastIndexByte(from.Address, '@')+1:]
	local := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, ev.Channel+"."+ev.ID+"."+SendWelcomeEmail{}.Kind())
	return "<" + local + "@" + domain + ">"
}

// welcomeMessage returns the mail, headers and body, with CRLF line ends.
func welcomeMessage(from, to *mail.Address, name, id string) []byte {
	greeting := "Hello,"
	if name = strings.TrimSpace(name); name != "" && !strings.ContainsAny(name, "\r\n") {
		greeting = "Hello " + name + ","
	}
	var b strings.Builder
	for _, h := range [][2]string{
		{"From", from.String()},
		{"To", to.String()},
		{"Subject", "Welcome!"},
		{"Date", time.Now().UTC().Format(time.RFC1123Z)},
		{"Message-ID", id},
		{"MIME-Version", "1.0"},
		{"Content-Type", "text/plain; charset=utf-8"},
		{"Content-Transfer-Encoding", "8bit"},
	} {
		b.WriteString(h[0] + ": " + h[1] + "\r\n")
	}
	b.WriteString("\r\n" + greeting + "\r\n\r\nThanks for signing up.\r\n")
	return []byte(b.String())
}

// sendMail delivers msg like smtp.SendMail, without authentication, but
// bounded by ctx: the connection is closed when ctx is done, so a hung
// server cannot hold the job past its deadline or a shutdown.
func sendMail(ctx context.Context, addr, from, to string, msg []byte) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("SMTP address %q: %w", addr, err)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, smtpTimeout)
		defer cancel()
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close() }()
	deadline, _ := ctx.Deadline()
	if err := conn.SetDeadline(deadline); err != nil {
		return err
	}
	// Unblock a read or write in progress when ctx is cancelled.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	err = deliver(conn, host, from, to, msg)
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("%w (%w)", ctx.Err(), err)
	}
	return err
}

// deliver runs one SMTP transaction on conn.
func deliver(conn net.Conn, host, from, to string, msg []byte) error {
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		return err
	}
	defer func() { _ = c.Close() }()
	if err := c.Hello("localhost"); err != nil {
		return err
	}
	if ok, _ := c.Extension("STARTTLS"); ok {
		if err := c.StartTLS(&tls.Config{ServerName: host}); err != nil {
			return err
		}
	}
	if err := c.Mail(from); err != nil {
		return err
	}
	if err := c.Rcpt(to); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(msg); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}
