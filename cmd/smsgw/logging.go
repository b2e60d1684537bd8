package main

import (
	"fmt"
	"log/slog"
	"regexp"
	"strings"
)

// The logs of every role pass through redact, the handlers' ReplaceAttr, so
// that they never hold a password, an API key, a secret, message text or a
// full phone number, whichever package logged it (the Temporal SDK's
// messages and the errors of stores and drivers included).

// secretKeys are parts of attribute names whose values are never logged.
var secretKeys = []string{"password", "passwd", "secret", "apikey", "api_key", "authorization", "token", "credential", "dsn"}

// contentKeys are attribute names whose values are message content: text,
// bodies and raw PDUs, which carry text and numbers. Only their length is
// logged.
var contentKeys = map[string]bool{"text": true, "short_message": true, "message_text": true, "body": true, "subject": true, "pdu": true, "payload": true}

// idKeys hold identifiers (upstream message IDs are often long decimal
// numbers), which are not phone numbers and are left whole.
var idKeys = map[string]bool{"id": true, "upstream_id": true, "receipt_id": true, "message_id": true, "messageid": true, "workflowid": true, "runid": true, "seq": true}

// redact is a slog ReplaceAttr: it hides secrets and content by their
// attribute names, and masks phone numbers and URL credentials in every
// other string it logs, the record's message included.
func redact(_ []string, a slog.Attr) slog.Attr {
	key := strings.ToLower(a.Key)
	for _, s := range secretKeys {
		if strings.Contains(key, s) {
			return slog.String(a.Key, "[redacted]")
		}
	}
	if contentKeys[key] {
		if a.Value.Kind() == slog.KindString {
			return slog.String(a.Key, fmt.Sprintf("[%d bytes]", len(a.Value.String())))
		}
		return slog.String(a.Key, "[redacted]")
	}
	if idKeys[key] {
		return a
	}
	switch a.Value.Kind() {
	case slog.KindString:
		a.Value = slog.StringValue(scrub(a.Value.String()))
	case slog.KindAny:
		v := a.Value.Any()
		if err, ok := v.(error); ok {
			a.Value = slog.StringValue(scrub(err.Error()))
		} else if s := fmt.Sprint(v); scrub(s) != s {
			a.Value = slog.StringValue(scrub(s))
		}
	}
	return a
}

// urlCredentials matches the user and password of a URL (mongodb://u:p@h).
var urlCredentials = regexp.MustCompile(`://[^/@\s]+@`)

// scrub masks the phone numbers and URL credentials in s.
func scrub(s string) string {
	if strings.Contains(s, "@") {
		s = urlCredentials.ReplaceAllString(s, "://[redacted]@")
	}
	return maskNumbers(s)
}

// maskNumbers replaces all but the last three digits of every run of 7 to
// 15 digits that stands alone (not part of a longer word or number) with
// '*': "+61412345678" becomes "+********678". Shorter runs (ports, codes,
// counts) and longer ones (nanosecond times) are left.
func maskNumbers(s string) string {
	var b []byte // nil until something is masked
	for i := 0; i < len(s); {
		if !isDigit(s[i]) {
			i++
			continue
		}
		j := i
		for j < len(s) && isDigit(s[j]) {
			j++
		}
		n := j - i
		if n >= 7 && n <= 15 && (i == 0 || !isWordByte(s[i-1])) && (j == len(s) || !isWordByte(s[j])) {
			if b == nil {
				b = []byte(s)
			}
			for k := i; k < j-3; k++ {
				b[k] = '*'
			}
		}
		i = j
	}
	if b == nil {
		return s
	}
	return string(b)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isWordByte(c byte) bool {
	return isDigit(c) || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_'
}
