// Package webhook delivers events over HTTP to a URL, signed as the
// Standard Webhooks specification (https://www.standardwebhooks.com/)
// describes.
//
// A delivery is one POST of the event's body, as given, with the headers
// webhook-id, webhook-timestamp (Unix seconds) and webhook-signature
// ("v1,<base64 HMAC-SHA256 of id.timestamp.body>"). Receivers verify it with
// any Standard Webhooks library; [Verify] is this package's own check.
//
// [Deliverer.Deliver] never follows redirects and never uses a proxy from the
// environment. By default it refuses to connect to loopback, private,
// link-local (including cloud metadata at 169.254.169.254) and other
// non-public addresses. The check runs on the address each connection is
// about to use, after DNS resolution, so a name that resolves to a public
// address when the route is saved and to a private one later (DNS rebinding)
// is refused too. [Options.AllowPrivate] and [Options.AllowCIDRs] relax it.
//
// Each delivery ends in a [Result] whose [Outcome] says what the caller should
// do: nothing more (Delivered), try again later (Retry, with the receiver's
// Retry-After when it gave one) or stop and report (Permanent).
package webhook
