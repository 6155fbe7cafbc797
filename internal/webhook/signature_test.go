package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The vector of the Standard Webhooks reference libraries' own sign test
// (libraries/go/webhook_symmetric_test.go, TestSymmetricWebhookSign), which
// Python's hmac module reproduces too.
const (
	vectorSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	vectorMsgID     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	vectorUnix      = 1614265330
	vectorBody      = `{"test": 2432232314}`
	vectorSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func TestSignMatchesTheSpecVector(t *testing.T) {
	t.Parallel()
	sig, err := Sign(vectorSecret, vectorMsgID, time.Unix(vectorUnix, 0), []byte(vectorBody))
	require.NoError(t, err)
	require.Equal(t, vectorSignature, sig)

	// The reference libraries decode a secret without the prefix the same way.
	sig, err = Sign(strings.TrimPrefix(vectorSecret, SecretPrefix), vectorMsgID, time.Unix(vectorUnix, 0), []byte(vectorBody))
	require.NoError(t, err)
	require.Equal(t, vectorSignature, sig)
}

func TestSignMatchesAHandComputedHMAC(t *testing.T) {
	t.Parallel()
	key := []byte("0123456789abcdef0123456789abcdef")
	secret := SecretPrefix + base64.StdEncoding.EncodeToString(key)
	ts := time.Unix(1700000000, 999_000_000) // sub-second part is not signed
	h := hmac.New(sha256.New, key)
	h.Write([]byte("evt_1.1700000000.{\"a\":1}"))
	want := "v1," + base64.StdEncoding.EncodeToString(h.Sum(nil))

	got, err := Sign(secret, "evt_1", ts, []byte(`{"a":1}`))
	require.NoError(t, err)
	require.Equal(t, want, got)
}

func TestParseSecret(t *testing.T) {
	t.Parallel()
	key, err := ParseSecret(vectorSecret)
	require.NoError(t, err)
	require.Len(t, key, 24)

	for _, tc := range []struct{ name, secret, errPart string }{
		{"empty", "", "is empty"},
		{"prefix only", "whsec_", "is empty"},
		{"not base64", "whsec_not base64!", "not valid base64"},
		{"missing padding", "whsec_YWJj ZA", "not valid base64"},
		{"url alphabet", "whsec_-_-_", "not valid base64"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := ParseSecret(tc.secret)
			require.ErrorContains(t, err, tc.errPart)
			require.NotContains(t, err.Error(), "\n")
			if tc.secret != "" && tc.secret != SecretPrefix {
				require.NotContains(t, err.Error(), strings.TrimPrefix(tc.secret, SecretPrefix), "the error must not show the secret")
			}
		})
	}
}

func signedHeaders(t *testing.T, secret, id string, ts time.Time, body []byte) http.Header {
	t.Helper()
	sig, err := Sign(secret, id, ts, body)
	require.NoError(t, err)
	h := http.Header{}
	h.Set(HeaderID, id)
	h.Set(HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	h.Set(HeaderSignature, sig)
	return h
}

func TestVerify(t *testing.T) {
	t.Parallel()
	body := []byte(`{"order":42}`)
	now := time.Now()

	t.Run("round trip", func(t *testing.T) {
		t.Parallel()
		require.NoError(t, Verify(vectorSecret, signedHeaders(t, vectorSecret, "m1", now, body), body, 5*time.Minute))
	})
	t.Run("spec vector", func(t *testing.T) {
		t.Parallel()
		h := http.Header{}
		h.Set(HeaderID, vectorMsgID)
		h.Set(HeaderTimestamp, strconv.Itoa(vectorUnix))
		h.Set(HeaderSignature, vectorSignature)
		require.NoError(t, verifyAt(vectorSecret, h, []byte(vectorBody), 5*time.Minute, time.Unix(vectorUnix+60, 0)))
	})
	t.Run("one of several signatures matches", func(t *testing.T) {
		t.Parallel()
		h := signedHeaders(t, vectorSecret, "m1", now, body)
		h.Set(HeaderSignature, "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= v1a,xyz "+h.Get(HeaderSignature))
		require.NoError(t, Verify(vectorSecret, h, body, 5*time.Minute))
	})
	t.Run("tampered body", func(t *testing.T) {
		t.Parallel()
		h := signedHeaders(t, vectorSecret, "m1", now, body)
		require.ErrorIs(t, Verify(vectorSecret, h, []byte(`{"order":43}`), 5*time.Minute), ErrNoMatchingSignature)
	})
	t.Run("other id", func(t *testing.T) {
		t.Parallel()
		h := signedHeaders(t, vectorSecret, "m1", now, body)
		h.Set(HeaderID, "m2")
		require.ErrorIs(t, Verify(vectorSecret, h, body, 5*time.Minute), ErrNoMatchingSignature)
	})
	t.Run("wrong secret", func(t *testing.T) {
		t.Parallel()
		h := signedHeaders(t, vectorSecret, "m1", now, body)
		other := SecretPrefix + base64.StdEncoding.EncodeToString([]byte("another key, 24 bytes!!!"))
		require.ErrorIs(t, Verify(other, h, body, 5*time.Minute), ErrNoMatchingSignature)
	})
	t.Run("old timestamp", func(t *testing.T) {
		t.Parallel()
		h := signedHeaders(t, vectorSecret, "m1", now.Add(-6*time.Minute), body)
		require.ErrorContains(t, Verify(vectorSecret, h, body, 5*time.Minute), "old")
	})
	t.Run("future timestamp", func(t *testing.T) {
		t.Parallel()
		h := signedHeaders(t, vectorSecret, "m1", now.Add(6*time.Minute), body)
		require.ErrorContains(t, Verify(vectorSecret, h, body, 5*time.Minute), "future")
	})
	t.Run("missing header", func(t *testing.T) {
		t.Parallel()
		for _, name := range []string{HeaderID, HeaderTimestamp, HeaderSignature} {
			h := signedHeaders(t, vectorSecret, "m1", now, body)
			h.Del(name)
			require.ErrorContains(t, Verify(vectorSecret, h, body, 5*time.Minute), "lacks a header", name)
		}
	})
	t.Run("empty signature", func(t *testing.T) {
		t.Parallel()
		h := signedHeaders(t, vectorSecret, "m1", now, body)
		h.Set(HeaderSignature, "v1,")
		require.ErrorIs(t, Verify(vectorSecret, h, body, 5*time.Minute), ErrNoMatchingSignature)
	})
}
