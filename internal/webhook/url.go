package webhook

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// MaxURLBytes is the longest webhook URL [ValidateURL] accepts.
const MaxURLBytes = 2048

// ValidateURL checks that raw can be a webhook target: an absolute http or
// https URL with a host, no user info (credentials) and no fragment, at most
// [MaxURLBytes] long. It does not resolve the host: whether the address is
// allowed is decided at connect time (see [Options.AllowPrivate]). Errors
// are one line and never show a password from the URL.
func ValidateURL(raw string) error {
	if len(raw) > MaxURLBytes {
		return fmt.Errorf("webhook URL is %d bytes long: at most %d are allowed; use a shorter URL", len(raw), MaxURLBytes)
	}
	if raw == "" {
		return errors.New("webhook URL is empty: give an http:// or https:// URL")
	}
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error repeats the URL, credentials included
		}
		return fmt.Errorf("webhook URL is not a valid URL (%v): give an http:// or https:// URL", err)
	}
	shown := u.Redacted()
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("webhook URL %q: scheme must be http or https", shown)
	}
	if u.User != nil {
		return fmt.Errorf("webhook URL %q must not contain credentials (user info before @): remove them; receivers authenticate deliveries by their webhook-signature", shown)
	}
	if u.Hostname() == "" {
		return fmt.Errorf("webhook URL %q has no host: write it as %s://host/path", shown, u.Scheme)
	}
	if strings.Contains(raw, "#") { // also an empty fragment, which url.Parse drops
		return fmt.Errorf("webhook URL %q must not have a fragment (#...): fragments are never sent to the server; remove it", shown)
	}
	return nil
}

// Redact returns raw with the password of its user info, if any, replaced
// by "xxxxx", for messages about a URL a user typed; raw itself when it
// does not parse.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	return u.Redacted()
}
