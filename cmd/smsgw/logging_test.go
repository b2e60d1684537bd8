package main

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

func TestMaskNumbers(t *testing.T) {
	for in, want := range map[string]string{
		"+61412345678":                     "+********678",
		"61412345678":                      "********678",
		"no route to +4915112345678 today": "no route to +**********678 today",
		"61412345678@sms.example.com":      "********678@sms.example.com",
		"to=61412345678&from=0412345678":   "to=********678&from=*******678",
		"1234567":                          "****567",
		"123456":                           "123456",
		"port 8080, 3 parts, code 0x0B":    "port 8080, 3 parts, code 0x0B",
		"1733140000123456789":              "1733140000123456789",
		"01a23663e074fc449cd124475ae803e1": "01a23663e074fc449cd124475ae803e1",
		"msisdn61412345678 id_61412345678": "msisdn61412345678 id_61412345678",
		"":                                 "",
	} {
		if got := maskNumbers(in); got != want {
			t.Errorf("maskNumbers(%q) = %q, want %q", in, got, want)
		}
	}
}

// Whatever a package logs goes through redact: secrets by their names,
// content by its name, numbers and URL credentials wherever they are.
func TestRedactedLogs(t *testing.T) {
	var buf bytes.Buffer
	s := settings{logLevel: "debug"}
	log := s.logger(&buf)
	log.Info("submit to +61412345678 refused",
		"password", "hunter2", "smpp_password", "pw-2", "apiKey", "k-3", "Authorization", "Bearer k-4", "webhook_secret", "s-5",
		"text", "Your code is 4711", "short_message", []byte("bytes 4712"), "pdu", "00000021000000040000",
		"err", errors.New("dial mongodb://smsgw:pw-6@mongo.internal:27017: no route to 61412345679"),
		"upstream_id", "1234567890", "id", "61412345670",
		slog.Group("req", "to", "+61412345671"))
	out := buf.String()
	for _, leak := range []string{"hunter2", "pw-2", "k-3", "k-4", "s-5", "4711", "4712", "00000021", "pw-6", "61412345678", "61412345679", "61412345671"} {
		if strings.Contains(out, leak) {
			t.Errorf("the log holds %q:\n%s", leak, out)
		}
	}
	for _, kept := range []string{`"upstream_id":"1234567890"`, `"id":"61412345670"`, "+********678", "mongo.internal:27017", `"text":"[17 bytes]"`} {
		if !strings.Contains(out, kept) {
			t.Errorf("the log lacks %q:\n%s", kept, out)
		}
	}
}
