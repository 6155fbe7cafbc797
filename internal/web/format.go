package web

import (
	"fmt"
	"strings"
	"time"
	"unicode"
)

// inert returns s with the characters that could change how the text
// around it reads written as escapes (\u202e): control characters, and
// the bidirectional formatting characters that would reverse it. The
// templates escape the rest for HTML.
func inert(s string) string {
	if strings.IndexFunc(s, unsafeRune) < 0 {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if unsafeRune(r) {
			fmt.Fprintf(&b, `\u%04x`, r)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func unsafeRune(r rune) bool {
	return unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) || r == '\u2028' || r == '\u2029' || r == '\ufeff'
}

// ago says how long before now t was, for people: "3 s", "5 min", "2 h",
// "4 d".
func ago(t any) string {
	var at time.Time
	switch v := t.(type) {
	case time.Time:
		at = v
	case *time.Time:
		if v == nil {
			return "-"
		}
		at = *v
	default:
		return ""
	}
	return secs(time.Since(at).Seconds()) + " ago"
}

// secs says a number of seconds for people.
func secs(v any) string {
	var s float64
	switch x := v.(type) {
	case float64:
		s = x
	case *float64:
		if x == nil {
			return "-"
		}
		s = *x
	default:
		return ""
	}
	switch {
	case s < 0:
		return "0 s"
	case s < 1:
		return fmt.Sprintf("%.0f ms", s*1000)
	case s < 120:
		return fmt.Sprintf("%.0f s", s)
	case s < 7200:
		return fmt.Sprintf("%.0f min", s/60)
	case s < 172800:
		return fmt.Sprintf("%.1f h", s/3600)
	}
	return fmt.Sprintf("%.1f d", s/86400)
}
