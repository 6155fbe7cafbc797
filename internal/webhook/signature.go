package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Header names of the Standard Webhooks specification.
const (
	// HeaderID carries the message id: the same for every attempt to deliver
	// one event, so that receivers can deduplicate.
	HeaderID = "webhook-id"
	// HeaderTimestamp carries the time of the attempt in Unix seconds.
	HeaderTimestamp = "webhook-timestamp"
	// HeaderSignature carries space-separated signatures "v1,<base64>".
	HeaderSignature = "webhook-signature"
)

// SecretPrefix starts a Standard Webhooks secret written as text:
// "whsec_" followed by the standard base64 encoding of the key bytes.
const SecretPrefix = "whsec_"

// ErrNoMatchingSignature is returned by [Verify] when no v1 signature in the
// webhook-signature header matches the body.
var ErrNoMatchingSignature = errors.New("webhook signature does not match: the body, id, timestamp or secret differ from what was signed")

// ParseSecret returns the HMAC key of a Standard Webhooks secret: the
// standard base64 decoding of the secret after an optional "whsec_" prefix,
// as the specification's reference libraries read it. A secret that is empty
// or not valid base64 is refused.
func ParseSecret(secret string) ([]byte, error) {
	encoded := strings.TrimPrefix(secret, SecretPrefix)
	if encoded == "" {
		return nil, errors.New(`webhook secret is empty: write it as "whsec_" followed by the base64 of at least 24 random bytes`)
	}
	key, err := base64.StdEncoding.DecodeString(encoded)
	if err != nil {
		// The decoder's message carries only an offset, never the secret.
		return nil, fmt.Errorf(`webhook secret is not valid base64 after the "whsec_" prefix (%v): write it as "whsec_" followed by the standard base64 (with padding) of the key bytes`, err)
	}
	if len(key) == 0 {
		return nil, errors.New(`webhook secret decodes to no bytes: write it as "whsec_" followed by the base64 of at least 24 random bytes`)
	}
	return key, nil
}

// Sign returns the webhook-signature value for a message: "v1," followed by
// the standard base64 encoding of HMAC-SHA256(key, "<msgID>.<unix ts>.<body>"),
// where key is [ParseSecret] of secret.
func Sign(secret string, msgID string, ts time.Time, body []byte) (string, error) {
	key, err := ParseSecret(secret)
	if err != nil {
		return "", err
	}
	return "v1," + base64.StdEncoding.EncodeToString(mac(key, msgID, ts.Unix(), body)), nil
}

func mac(key []byte, msgID string, unix int64, body []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(msgID))
	h.Write([]byte{'.'})
	h.Write(strconv.AppendInt(nil, unix, 10))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// Verify checks a received message as a Standard Webhooks receiver does:
// the webhook-id, webhook-timestamp and webhook-signature headers must be
// present, the timestamp must be within tolerance of the current time (in
// either direction), and one of the space-separated "v1,<base64>" signatures
// must equal the HMAC of the body under secret. Signatures are compared in
// constant time; signatures of other versions are ignored.
func Verify(secret string, headers http.Header, body []byte, tolerance time.Duration) error {
	return verifyAt(secret, headers, body, tolerance, time.Now())
}

func verifyAt(secret string, headers http.Header, body []byte, tolerance time.Duration, now time.Time) error {
	key, err := ParseSecret(secret)
	if err != nil {
		return err
	}
	id := headers.Get(HeaderID)
	tsText := headers.Get(HeaderTimestamp)
	sigs := headers.Get(HeaderSignature)
	if id == "" || tsText == "" || sigs == "" {
		return fmt.Errorf("webhook message lacks a header: %s, %s and %s are all required", HeaderID, HeaderTimestamp, HeaderSignature)
	}
	unix, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil {
		return fmt.Errorf("webhook-timestamp %q is not Unix seconds", tsText)
	}
	ts := time.Unix(unix, 0)
	if now.Sub(ts) > tolerance {
		return fmt.Errorf("webhook-timestamp %d is more than %s old: the message is stale or replayed", unix, tolerance)
	}
	if ts.Sub(now) > tolerance {
		return fmt.Errorf("webhook-timestamp %d is more than %s in the future: check the sender's clock", unix, tolerance)
	}
	want := mac(key, id, unix, body)
	for _, sig := range strings.Fields(sigs) {
		version, encoded, ok := strings.Cut(sig, ",")
		if !ok || version != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(encoded)
		if err != nil {
			continue
		}
		if hmac.Equal(got, want) {
			return nil
		}
	}
	return ErrNoMatchingSignature
}
