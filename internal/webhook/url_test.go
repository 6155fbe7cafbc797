package webhook

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestValidateURL(t *testing.T) {
	t.Parallel()
	longest := "https://example.com/" + strings.Repeat("a", MaxURLBytes-len("https://example.com/"))
	for _, tc := range []struct {
		name, url string
		errPart   string // "" when valid
	}{
		{"https", "https://example.com/hooks/1?x=y", ""},
		{"http with port", "http://example.com:8080/", ""},
		{"ip literal", "http://203.0.113.7/hook", ""},
		{"ipv6 literal", "http://[2001:db8::1]:8080/hook", ""},
		{"unicode host", "https://bücher.example/hook", ""},
		{"at the length limit", longest, ""},
		{"too long", longest + "a", "at most 2048"},
		{"empty", "", "is empty"},
		{"ftp", "ftp://x", `webhook URL "ftp://x": scheme must be http or https`},
		{"javascript", "javascript:alert(1)", "scheme must be http or https"},
		{"relative", "/hooks/1", "scheme must be http or https"},
		{"no scheme", "example.com/hook", "scheme must be http or https"},
		{"empty host", "https:///hook", "has no host"},
		{"opaque", "https:example.com", "has no host"},
		{"port only", "http://:8080/", "has no host"},
		{"user and password", "https://alice:s3cret@example.com/", "must not contain credentials"},
		{"user only", "https://alice@example.com/", "must not contain credentials"},
		{"fragment", "https://example.com/hook#frag", "must not have a fragment"},
		{"empty fragment", "https://example.com/hook#", "must not have a fragment"},
		{"space in host", "https://exa mple.com/", "not a valid URL"},
		{"bad port", "https://example.com:http/", "not a valid URL"},
		{"control character", "https://example.com/\n", "not a valid URL"},
		{"unparseable with password", "https://alice:s3cret@exa mple.com/", "not a valid URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := ValidateURL(tc.url)
			if tc.errPart == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.errPart)
			require.NotContains(t, err.Error(), "\n", "errors are one line")
			require.NotContains(t, err.Error(), "s3cret", "errors never show a password")
		})
	}
}

func TestRedact(t *testing.T) {
	t.Parallel()
	require.Equal(t, "https://user:xxxxx@x/y", Redact("https://user:hunter2@x/y"))
	require.Equal(t, "https://x/y?token=abc", Redact("https://x/y?token=abc"))
	require.Equal(t, "%zz", Redact("%zz"))
}
