package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/notified/notified/history"
)

// TestStatusNamesEachWebhookURL: webhook routes share their kind, so the
// status names each handler row's URL, shortened and made safe for a
// terminal.
func TestStatusNamesEachWebhookURL(t *testing.T) {
	t.Parallel()
	hostile := "https://hooks.example/a?\x1b]0;pwned\x07" + strings.Repeat("x", 200)
	st := &history.Status{Channel: "events", At: time.Now(), Window: 3600, LastMinute: map[string]int64{}, LastHour: map[string]int64{},
		Handlers: []history.HandlerStatus{
			{Handler: "notified_webhook", Webhook: "https://hooks.example/welcome", States: map[string]int64{"completed": 3}},
			{Handler: "notified_webhook", Webhook: hostile, States: map[string]int64{"cancelled": 1}},
			{Handler: "send_welcome", States: map[string]int64{"completed": 2}},
		}}
	var out bytes.Buffer
	printStatus(&out, st, "v1")
	got := out.String()
	require.Regexp(t, `(?m)^notified_webhook to https://hooks\.example/welcome +0 +0 +0 +0 +0 +3 +0 +0 +-$`, got)
	require.Regexp(t, `(?m)^send_welcome +0 +0 +0 +0 +0 +2 +0 +0 +-$`, got)
	require.NotContains(t, got, "\x1b")
	require.NotContains(t, got, "\x07")
	require.NotContains(t, got, strings.Repeat("x", 100), "a long URL is shortened")
	require.Contains(t, got, "notified_webhook to https://hooks.example/a?")
}
