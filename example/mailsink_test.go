package example_test

import (
	"context"
	"errors"
	"net"
	"net/smtp"
	"net/textproto"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/notified/notified/example"
)

func TestMailSink(t *testing.T) {
	t.Parallel()

	setup := func(t *testing.T) *example.MailSink {
		t.Helper()
		sink, err := example.StartMailSink(context.Background(), "127.0.0.1:0")
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, sink.Close()) })
		return sink
	}

	t.Run("SendMail", func(t *testing.T) {
		t.Parallel()
		sink := setup(t)
		var seen []example.Mail
		done := make(chan struct{}, 1)
		sink.OnMail(func(m example.Mail) { seen = append(seen, m); done <- struct{}{} })

		msg := "Subject: hi\r\n\r\nline one\r\n.starts with a dot\r\n"
		err := smtp.SendMail(sink.Addr(), nil, "from@example.com", []string{"a@example.com", "b@example.com"}, []byte(msg))
		require.NoError(t, err)
		<-done

		want := example.Mail{From: "from@example.com", To: []string{"a@example.com", "b@example.com"},
			Data: "Subject: hi\n\nline one\n.starts with a dot\n"}
		require.Equal(t, []example.Mail{want}, sink.Messages())
		require.Equal(t, []example.Mail{want}, seen)
	})

	t.Run("FailNext", func(t *testing.T) {
		t.Parallel()
		sink := setup(t)
		sink.FailNext(2, 550, "5.1.1 no such user")

		for range 2 {
			err := smtp.SendMail(sink.Addr(), nil, "from@example.com", []string{"a@example.com"}, []byte("x\r\n"))
			var reply *textproto.Error
			require.True(t, errors.As(err, &reply), "error %v", err)
			require.Equal(t, 550, reply.Code)
			require.Equal(t, "5.1.1 no such user", reply.Msg)
		}
		require.Empty(t, sink.Messages())

		sink.FailNext(1, 451, "")
		err := smtp.SendMail(sink.Addr(), nil, "from@example.com", []string{"a@example.com"}, []byte("x\r\n"))
		require.EqualError(t, err, `451 "failure requested by FailNext"`)

		require.NoError(t, smtp.SendMail(sink.Addr(), nil, "from@example.com", []string{"a@example.com"}, []byte("x\r\n")))
		require.Len(t, sink.Messages(), 1)
	})

	t.Run("Commands", func(t *testing.T) {
		t.Parallel()
		sink := setup(t)
		conn, err := textproto.Dial("tcp", sink.Addr())
		require.NoError(t, err)
		defer func() { _ = conn.Close() }()
		expect := func(code int) {
			t.Helper()
			_, _, err := conn.ReadResponse(code)
			require.NoError(t, err)
		}
		cmd := func(code int, line string) {
			t.Helper()
			require.NoError(t, conn.PrintfLine("%s", line))
			expect(code)
		}
		expect(220)
		cmd(250, "HELO client")
		cmd(503, "RCPT TO:<a@example.com>")
		cmd(503, "DATA")
		cmd(501, "MAIL FROM: nobody")
		cmd(250, "mail from:<x@example.com> BODY=8BITMIME")
		cmd(503, "MAIL FROM:<y@example.com>")
		cmd(250, "RSET")
		cmd(250, "MAIL FROM:<y@example.com>")
		cmd(250, "RCPT TO:<a@example.com>")
		cmd(250, "NOOP")
		cmd(502, "VRFY a")
		cmd(354, "DATA")
		cmd(250, "hello\r\n..\r\n.")
		cmd(221, "QUIT")
		require.Equal(t, []example.Mail{{From: "y@example.com", To: []string{"a@example.com"}, Data: "hello\n.\n"}}, sink.Messages())
	})

	t.Run("CloseStops", func(t *testing.T) {
		t.Parallel()
		sink, err := example.StartMailSink(context.Background(), "127.0.0.1:0")
		require.NoError(t, err)
		// An idle client connection does not keep Close waiting.
		idle, err := net.Dial("tcp", sink.Addr())
		require.NoError(t, err)
		defer func() { _ = idle.Close() }()

		require.NoError(t, sink.Close())
		require.NoError(t, sink.Close(), "Close twice")
		_, err = net.DialTimeout("tcp", sink.Addr(), time.Second)
		require.Error(t, err)
		err = smtp.SendMail(sink.Addr(), nil, "from@example.com", []string{"a@example.com"}, []byte("x\r\n"))
		require.ErrorContains(t, err, "connection refused")
	})

	t.Run("ContextStops", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(context.Background())
		sink, err := example.StartMailSink(ctx, "127.0.0.1:0")
		require.NoError(t, err)
		cancel()
		require.Eventually(t, func() bool {
			c, err := net.DialTimeout("tcp", sink.Addr(), time.Second)
			if err == nil {
				_ = c.Close()
			}
			return err != nil
		}, 5*time.Second, 10*time.Millisecond)
		require.NoError(t, sink.Close())
	})
}
