package smsgw

import (
	"fmt"
	"math/big"
	"strings"
	"time"
)

// ReceiptText is the de-facto text form of an SMPP delivery receipt, carried in
// the short_message (or message_payload) of a deliver_sm or data_sm:
//
//	id:IIIIIIIIII sub:SSS dlvrd:DDD submit date:YYMMDDhhmm done date:YYMMDDhhmm stat:DDDDDDD err:E text:...
//
// SMPP 3.4 describes it only in an appendix as an example, so SMSCs differ in
// details; ParseReceiptText accepts the variants seen in the field.
type ReceiptText struct {
	ID         string    // the message_id the SMSC gave in submit_sm_resp, as written (not normalised)
	Sub        string    // number of messages originally submitted, usually "001"
	Dlvrd      string    // number of messages delivered, usually "001" or "000"
	SubmitDate time.Time // UTC; zero when absent or unreadable
	DoneDate   time.Time // UTC; zero when absent or unreadable
	Stat       string    // upper case, long forms folded: DELIVERED becomes DELIVRD
	Err        string    // network error code; all-digit codes padded to three digits
	Text       string    // the first characters of the original message, often empty
}

// receiptKeys are the keys of the text form, lower case. A key of two words
// also matches with an underscore or no separator ("submit_date", "submitdate").
var receiptKeys = []string{"id", "sub", "dlvrd", "submit date", "done date", "stat", "err", "text"}

// ParseReceiptText reads the text form of a delivery receipt. Keys are matched
// without regard to case and may appear in any order; sub, dlvrd, the dates and
// text may be missing. Dates may be YYMMDDhhmm, YYMMDDhhmmss or
// YYYYMMDDhhmmss and are read as UTC; a date that cannot be read is left zero
// rather than failing the receipt. Everything after "text:" is the text, even
// if it looks like more keys. It returns an *Error with code EINVALID when the
// id or stat is missing.
func ParseReceiptText(text string) (ReceiptText, error) {
	var r ReceiptText
	fields := splitReceiptFields(text)
	for key, value := range fields {
		if key == "text" {
			r.Text = strings.TrimSpace(value)
			continue
		}
		// Every other value is one token; anything after it up to the next key is noise.
		token := firstToken(value)
		switch key {
		case "id":
			r.ID = token
		case "sub":
			r.Sub = token
		case "dlvrd":
			r.Dlvrd = token
		case "submit date":
			r.SubmitDate = parseReceiptDate(token)
		case "done date":
			r.DoneDate = parseReceiptDate(token)
		case "stat":
			r.Stat = normalizeStat(token)
		case "err":
			r.Err = normalizeErr(token)
		}
	}
	// The errors do not quote the text: a receipt's text: field holds the
	// start of the customer's message, and errors end up in logs.
	switch {
	case r.ID == "" && r.Stat == "":
		return r, Errorf(EINVALID, "receipt text (%d bytes) has no id and no stat", len(text))
	case r.ID == "":
		return r, Errorf(EINVALID, "receipt text (%d bytes) has no id", len(text))
	case r.Stat == "":
		return r, Errorf(EINVALID, "receipt text (%d bytes) has no stat", len(text))
	}
	return r, nil
}

// String formats the receipt in the standard text form, with ten-digit dates.
// Empty Sub and Dlvrd are written as "001", and as "001" or "000" by Stat.
func (r ReceiptText) String() string {
	sub, dlvrd := r.Sub, r.Dlvrd
	if sub == "" {
		sub = "001"
	}
	if dlvrd == "" {
		dlvrd = "000"
		if r.Stat == "DELIVRD" {
			dlvrd = "001"
		}
	}
	return fmt.Sprintf("id:%s sub:%s dlvrd:%s submit date:%s done date:%s stat:%s err:%s text:%s",
		r.ID, sub, dlvrd, formatReceiptDate(r.SubmitDate), formatReceiptDate(r.DoneDate), r.Stat, r.Err, r.Text)
}

// splitReceiptFields finds each known key followed by ':' at the start of the
// text or after white space, and returns the raw value of each key: the text
// between its colon and the next key. The first occurrence of a key wins.
func splitReceiptFields(text string) map[string]string {
	type found struct {
		key        string
		start, end int // the key's first byte, and the first byte of its value
	}
	var keys []found
	for i := 0; i < len(text); i++ {
		if i > 0 && !isSpace(text[i-1]) {
			continue
		}
		key, n := matchReceiptKey(text[i:])
		if n == 0 {
			continue
		}
		keys = append(keys, found{key: key, start: i, end: i + n})
		if key == "text" {
			break // the rest is message text
		}
		i += n - 1
	}
	fields := make(map[string]string, len(keys))
	for j, k := range keys {
		end := len(text)
		if j+1 < len(keys) {
			end = keys[j+1].start
		}
		if _, seen := fields[k.key]; !seen {
			fields[k.key] = text[k.end:end]
		}
	}
	return fields
}

// matchReceiptKey reports which key s starts with, and the length of the key
// and its colon; n is 0 when s starts with no key.
func matchReceiptKey(s string) (key string, n int) {
	for _, k := range receiptKeys {
		first, second, twoWords := strings.Cut(k, " ")
		if len(s) < len(first) || !strings.EqualFold(s[:len(first)], first) {
			continue
		}
		i := len(first)
		if twoWords {
			for i < len(s) && (s[i] == ' ' || s[i] == '_') {
				i++
			}
			if len(s) < i+len(second) || !strings.EqualFold(s[i:i+len(second)], second) {
				continue
			}
			i += len(second)
		}
		if i < len(s) && s[i] == ':' {
			return k, i + 1
		}
	}
	return "", 0
}

func parseReceiptDate(s string) time.Time {
	var layout string
	switch len(s) {
	case 10:
		layout = "0601021504"
	case 12:
		layout = "060102150405"
	case 14:
		layout = "20060102150405"
	default:
		return time.Time{}
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return time.Time{}
		}
	}
	t, err := time.ParseInLocation(layout, s, time.UTC)
	if err != nil {
		return time.Time{}
	}
	return t
}

func formatReceiptDate(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("0601021504")
}

// normalizeStat upper-cases the state word and folds the long forms some
// SMSCs write into the seven-letter words of SMPP 3.4.
func normalizeStat(s string) string {
	s = strings.ToUpper(s)
	switch s {
	case "DELIVERED":
		return "DELIVRD"
	case "UNDELIVERABLE", "UNDELIVERED":
		return "UNDELIV"
	case "REJECTED":
		return "REJECTD"
	case "ACCEPTED":
		return "ACCEPTD"
	}
	return s
}

// normalizeErr pads an all-digit error code to three digits ("0" becomes "000").
func normalizeErr(s string) string {
	if s == "" || len(s) >= 3 {
		return s
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return s
		}
	}
	return strings.Repeat("0", 3-len(s)) + s
}

func firstToken(s string) string {
	s = strings.TrimLeft(s, " \t\r\n\x00")
	for i := 0; i < len(s); i++ {
		if isSpace(s[i]) || s[i] == 0 {
			return s[:i]
		}
	}
	return s
}

func isSpace(b byte) bool { return b == ' ' || b == '\t' || b == '\r' || b == '\n' }

// Notations of upstream message IDs, for NormalizeUpstreamID.
const (
	UpstreamIDAsIs    = ""        // compare IDs as written, only trimmed
	UpstreamIDHex     = "hex"     // hexadecimal digits
	UpstreamIDDecimal = "decimal" // decimal digits
)

// maxUpstreamIDLen is the longest message_id SMPP allows (a 65-octet C-Octet
// String without its NUL). Longer input is returned trimmed but unconverted.
const maxUpstreamIDLen = 64

// CheckUpstreamIDFormat returns an error for a notation NormalizeUpstreamID does not know.
func CheckUpstreamIDFormat(format string) error {
	switch format {
	case UpstreamIDAsIs, UpstreamIDHex, UpstreamIDDecimal:
		return nil
	}
	return Errorf(EINVALID, "upstream ID format %q must be %q, %q or empty", format, UpstreamIDHex, UpstreamIDDecimal)
}

// NormalizeUpstreamID returns the canonical form of an upstream message ID
// written in the given notation, so that the ID from submit_sm_resp and the
// one in a receipt compare equal even when the SMSC writes them differently.
//
// The canonical form of a number is lower-case hexadecimal without leading
// zeros ("0" for zero):
//   - "hex": "0x" prefix, leading zeros and case are dropped: "000A1F" → "a1f".
//   - "decimal": the number is converted: "2591" → "a1f". This is how an SMSC
//     that answers submit_sm_resp in hex but writes receipts in decimal is
//     matched: normalise the submit_sm_resp ID as "hex" and the receipt ID as
//     "decimal".
//   - "": the ID is kept as written.
//
// Surrounding spaces and NULs are always trimmed. An ID that is not a number
// in the given notation (or is longer than SMPP allows) is returned trimmed but
// otherwise unchanged, so it can still be matched exactly.
func NormalizeUpstreamID(id string, format string) string {
	id = strings.Trim(id, " \t\r\n\x00")
	if len(id) > maxUpstreamIDLen {
		return id
	}
	switch format {
	case UpstreamIDHex:
		digits := id
		if len(digits) > 2 && digits[0] == '0' && (digits[1] == 'x' || digits[1] == 'X') {
			digits = digits[2:]
		}
		if !allDigits(digits, 16) {
			return id
		}
		digits = strings.TrimLeft(strings.ToLower(digits), "0")
		if digits == "" {
			return "0"
		}
		return digits
	case UpstreamIDDecimal:
		if !allDigits(id, 10) {
			return id
		}
		n, ok := new(big.Int).SetString(id, 10)
		if !ok {
			return id
		}
		return n.Text(16)
	}
	return id
}

func allDigits(s string, base int) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
		case base == 16 && (c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'):
		default:
			return false
		}
	}
	return true
}
