package example

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"strings"
	"sync"
)

// Mail is one message a MailSink accepted.
type Mail struct {
	// From is the envelope sender (MAIL FROM).
	From string
	// To are the envelope recipients (RCPT TO).
	To []string
	// Data is the message, headers and body, as sent after DATA, with the
	// dot-stuffing removed and lines ending in "\n".
	Data string
}

// maxMailSize is the largest message a MailSink keeps.
const maxMailSize = 10 << 20

// MailSink is a minimal SMTP server that keeps every message it accepts in
// memory, for demos and tests. It speaks just enough SMTP for
// net/smtp.SendMail without authentication or TLS: EHLO, HELO, MAIL FROM,
// RCPT TO, DATA, RSET, NOOP and QUIT. It delivers nothing.
type MailSink struct {
	ln       net.Listener
	stopCtx  func() bool // stops the context watcher
	wg       sync.WaitGroup
	closeErr error
	once     sync.Once

	mu       sync.Mutex
	conns    map[net.Conn]struct{}
	closed   bool
	messages []Mail
	failN    int
	failCode int
	failMsg  string
	onMail   func(Mail)
}

// StartMailSink listens on addr ("127.0.0.1:0" picks a free port) and serves
// SMTP until ctx is done or Close is called.
func StartMailSink(ctx context.Context, addr string) (*MailSink, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("mail sink: %w", err)
	}
	s := &MailSink{ln: ln, conns: map[net.Conn]struct{}{}}
	s.stopCtx = context.AfterFunc(ctx, func() { _ = s.Close() })
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// Addr returns the host:port the sink listens on.
func (s *MailSink) Addr() string { return s.ln.Addr().String() }

// Messages returns a copy of the messages accepted so far, oldest first.
func (s *MailSink) Messages() []Mail {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Mail, len(s.messages))
	for i, m := range s.messages {
		m.To = append([]string(nil), m.To...)
		out[i] = m
	}
	return out
}

// FailNext makes the next n RCPT TO commands get the reply code and msg
// instead of 250: a 4xx code (451) is a temporary failure that a sender
// retries, a 5xx code (550) a permanent one.
func (s *MailSink) FailNext(n int, code int, msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failN, s.failCode, s.failMsg = n, code, msg
}

// OnMail sets a function called with each message the sink accepts, after it
// is added to Messages, on the goroutine serving the connection; nil removes
// it. cmd/example-worker uses it to log the mail.
func (s *MailSink) OnMail(fn func(Mail)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onMail = fn
}

// Close stops listening, closes open connections and waits for every
// goroutine of the sink to return. It may be called more than once.
func (s *MailSink) Close() error {
	s.once.Do(func() {
		s.stopCtx()
		s.mu.Lock()
		s.closed = true
		for c := range s.conns {
			_ = c.Close()
		}
		s.mu.Unlock()
		s.closeErr = s.ln.Close()
		s.wg.Wait()
	})
	return s.closeErr
}

func (s *MailSink) accept() {
	defer s.wg.Done()
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			return // closed; a sink for demos does not retry Accept
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			_ = conn.Close()
			return
		}
		s.conns[conn] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			defer func() {
				s.mu.Lock()
				delete(s.conns, conn)
				s.mu.Unlock()
				_ = conn.Close()
			}()
			s.serve(conn)
		}()
	}
}

// session is the state of one SMTP conversation.
type session struct {
	from     string
	to       []string
	mailOpen bool
}

// serve speaks SMTP on conn until QUIT or an error.
func (s *MailSink) serve(conn net.Conn) {
	tp := textproto.NewConn(conn)
	if !reply(tp, 220, "notified-mailsink ESMTP ready") {
		return
	}
	var sess session
	for {
		line, err := tp.ReadLine()
		if err != nil {
			return
		}
		verb, arg, _ := strings.Cut(line, " ")
		if !s.command(tp, &sess, strings.ToUpper(verb), arg) {
			return
		}
	}
}

// reply sends one reply line and reports whether it was sent.
func reply(tp *textproto.Conn, code int, text string) bool {
	return tp.PrintfLine("%d %s", code, text) == nil
}

// command answers one SMTP command of sess and reports whether the
// conversation goes on.
func (s *MailSink) command(tp *textproto.Conn, sess *session, verb, arg string) bool {
	switch verb {
	case "EHLO":
		*sess = session{}
		return tp.PrintfLine("250-notified-mailsink greets %s", arg) == nil && reply(tp, 250, "8BITMIME")
	case "HELO":
		*sess = session{}
		return reply(tp, 250, "notified-mailsink")
	case "MAIL":
		addr, ok := pathArg(arg, "FROM:")
		switch {
		case !ok:
			reply(tp, 501, "5.5.4 syntax: MAIL FROM:<address>")
		case sess.mailOpen:
			reply(tp, 503, "5.5.1 sender already given")
		default:
			*sess = session{from: addr, mailOpen: true}
			reply(tp, 250, "2.1.0 OK")
		}
	case "RCPT":
		addr, ok := pathArg(arg, "TO:")
		switch {
		case !ok:
			reply(tp, 501, "5.5.4 syntax: RCPT TO:<address>")
		case !sess.mailOpen:
			reply(tp, 503, "5.5.1 need MAIL first")
		default:
			if code, msg, fail := s.takeFailure(); fail {
				reply(tp, code, msg)
				return true
			}
			sess.to = append(sess.to, addr)
			reply(tp, 250, "2.1.5 OK")
		}
	case "DATA":
		return s.data(tp, sess)
	case "RSET":
		*sess = session{}
		reply(tp, 250, "2.0.0 OK")
	case "NOOP":
		reply(tp, 250, "2.0.0 OK")
	case "QUIT":
		reply(tp, 221, "2.0.0 bye")
		return false
	default:
		reply(tp, 502, "5.5.2 command not implemented")
	}
	return true
}

// data receives the message of sess after DATA, keeps it unless it is
// larger than maxMailSize, and reports whether the conversation goes on.
func (s *MailSink) data(tp *textproto.Conn, sess *session) bool {
	if len(sess.to) == 0 {
		reply(tp, 503, "5.5.1 need RCPT first")
		return true
	}
	if !reply(tp, 354, "end data with <CR><LF>.<CR><LF>") {
		return false
	}
	data, err := io.ReadAll(io.LimitReader(tp.DotReader(), maxMailSize+1))
	if err != nil {
		return false
	}
	if len(data) > maxMailSize {
		// Read the rest of the message before answering.
		if _, err := io.Copy(io.Discard, tp.DotReader()); err != nil {
			return false
		}
		reply(tp, 552, "5.3.4 message too big")
		*sess = session{}
		return true
	}
	s.accepted(Mail{From: sess.from, To: sess.to, Data: string(data)})
	*sess = session{}
	return reply(tp, 250, "2.0.0 OK accepted")
}

// pathArg parses "FROM:<addr> PARAMS" or "TO:<addr> PARAMS" and returns addr.
func pathArg(arg, prefix string) (string, bool) {
	if len(arg) < len(prefix) || !strings.EqualFold(arg[:len(prefix)], prefix) {
		return "", false
	}
	rest := strings.TrimSpace(arg[len(prefix):])
	if !strings.HasPrefix(rest, "<") {
		return "", false
	}
	addr, _, ok := strings.Cut(rest[1:], ">")
	return addr, ok
}

// takeFailure consumes one of the failures FailNext asked for.
func (s *MailSink) takeFailure() (int, string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failN <= 0 {
		return 0, "", false
	}
	s.failN--
	msg := s.failMsg
	if msg == "" {
		msg = "failure requested by FailNext"
	}
	return s.failCode, msg, true
}

// accepted stores m and calls the OnMail function.
func (s *MailSink) accepted(m Mail) {
	s.mu.Lock()
	s.messages = append(s.messages, m)
	fn := s.onMail
	s.mu.Unlock()
	if fn != nil {
		fn(Mail{From: m.From, To: append([]string(nil), m.To...), Data: m.Data})
	}
}
