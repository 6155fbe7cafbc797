package web

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestSessionCookieValues(t *testing.T) {
	t.Parallel()
	key, err := sessionKey("admin", "s3cret")
	require.NoError(t, err)
	now := time.Now()
	v := signSession(key, "admin", now.Add(time.Hour))

	user, err := verifySession(key, v, now)
	require.NoError(t, err)
	require.Equal(t, "admin", user)

	other, err := sessionKey("admin", "n3w")
	require.NoError(t, err)
	for name, c := range map[string]struct {
		key   []byte
		value string
		at    time.Time
	}{
		"expired":           {key, v, now.Add(time.Hour)},
		"other password":    {other, v, now},
		"tampered user":     {key, "cm9vdA" + v[len("YWRtaW4"):], now},
		"no signature":      {key, "YWRtaW4.123", now},
		"signature not b64": {key, v + "!", now},
		"empty":             {key, "", now},
	} {
		_, err := verifySession(c.key, c.value, c.at)
		require.ErrorIs(t, err, errBadSession, name)
	}
}

func TestLocalPath(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"/events?name=x":       "/events?name=x",
		"/riverui/jobs/1":      "/riverui/jobs/1",
		"":                     "/",
		"events":               "/",
		"//evil.example/x":     "/",
		"/\\evil.example":      "/",
		"https://evil.example": "/",
		"/x\r\nSet-Cookie: a":  "/",
	} {
		require.Equal(t, want, localPath(in), in)
	}
}
