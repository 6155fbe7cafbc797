package eventstable

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/notified/notified/internal/termsafe"
)

// MaxIDLength is the longest id, in bytes, the bridge accepts for a text id
// column. Longer payloads are recorded as rejected.
const MaxIDLength = 1024

// ParseID returns the canonical text of a payload as an id of this table
// (the text Postgres gives for id::text), or why it is not one.
func (t *Table) ParseID(payload string) (string, error) {
	if len(payload) > MaxIDLength {
		return "", fmt.Errorf("payload is %d bytes, longer than the %d bytes an id may have", len(payload), MaxIDLength)
	}
	switch t.Kind {
	case IDInteger:
		n, err := strconv.ParseInt(payload, 10, 64)
		if err != nil {
			var numErr *strconv.NumError
			if errors.As(err, &numErr) && errors.Is(numErr.Err, strconv.ErrRange) {
				return "", fmt.Errorf("payload %s is out of range for id column type %s", termsafe.QuoteShort(payload), t.TypeName)
			}
			return "", fmt.Errorf("payload %s is not a valid %s id", termsafe.QuoteShort(payload), t.TypeName)
		}
		if n < t.minInt || n > t.maxInt {
			return "", fmt.Errorf("payload %s is out of range for id column type %s", termsafe.QuoteShort(payload), t.TypeName)
		}
		// Most payloads are canonical already: keep them, with no copy.
		var buf [20]byte
		if canonical := strconv.AppendInt(buf[:0], n, 10); string(canonical) != payload {
			return string(canonical), nil
		}
		return payload, nil
	case IDUUID:
		u, ok := canonicalUUID(payload)
		if !ok {
			return "", fmt.Errorf("payload %s is not a valid uuid id", termsafe.QuoteShort(payload))
		}
		return u, nil
	default:
		if payload == "" {
			return "", errors.New("payload is empty")
		}
		return payload, nil
	}
}

// canonicalUUID accepts the forms Postgres' uuid input accepts most often
// (hyphenated or not, upper or lower case, optionally in braces) and returns
// the lower-case hyphenated form.
func canonicalUUID(s string) (string, bool) {
	if strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}") {
		s = s[1 : len(s)-1]
	}
	var hexDigits []byte
	if len(s) == 36 {
		if s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
			return "", false
		}
		hexDigits = []byte(s[0:8] + s[9:13] + s[14:18] + s[19:23] + s[24:])
	} else if len(s) == 32 {
		hexDigits = []byte(s)
	} else {
		return "", false
	}
	var raw [16]byte
	if _, err := hex.Decode(raw[:], hexDigits); err != nil {
		return "", false
	}
	h := hex.EncodeToString(raw[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:], true
}

// RecordKey is the key a payload is recorded under in notified_dispatch:
// the payload itself, or for one longer than MaxIDLength a prefix and its
// SHA-256, so the key always fits in the primary key's index.
func RecordKey(payload string) string {
	if len(payload) <= MaxIDLength {
		return payload
	}
	sum := sha256.Sum256([]byte(payload))
	return termsafe.Truncate(payload, 64) + "...sha256:" + hex.EncodeToString(sum[:])
}

// RangeBound parses a range bound as an id of the table: an int64 for an
// integer column, else the canonical text.
func (t *Table) RangeBound(s string) (any, error) {
	key, err := t.ParseID(s)
	if err != nil {
		return nil, err
	}
	if t.Kind == IDInteger {
		n, err := strconv.ParseInt(key, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("id %s: %w", termsafe.QuoteShort(key), err)
		}
		return n, nil
	}
	return key, nil
}

// ForIDType returns a Table whose id column has the type typname (int2,
// int4, int8, uuid, text, varchar) spelled formatted, found in no catalog:
// it parses ids as Inspect's Table would, for tests and benchmarks.
func ForIDType(typname, formatted string) (*Table, error) {
	t := &Table{}
	if !t.setIDType(typname, formatted) {
		return nil, fmt.Errorf("%w: %s", ErrIDType, formatted)
	}
	return t, nil
}
