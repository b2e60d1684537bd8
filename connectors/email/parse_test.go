package email

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func crlf(s string) []byte { return []byte(strings.ReplaceAll(s, "\n", "\r\n")) }

func TestParseMail(t *testing.T) {
	for _, c := range []struct {
		name, mail string
		subject    string
		text       string
		err        string
	}{
		{"plain, no headers but subject", "Subject: Hi\n\nHello there.\n", "Hi", "Hello there.", ""},
		{"signature cut, blank lines squeezed", "\nline one\n\n\n\nline two  \n-- \nJane\n", "", "line one\n\nline two", ""},
		{"quoted-printable UTF-8", "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\nGr=C3=BC=C3=9Fe =E2=82=AC5, a soft=\n break\n", "", "Grüße €5, a soft break", ""},
		{"base64 windows-1252", "Content-Type: text/plain; charset=windows-1252\nContent-Transfer-Encoding: base64\n\nk2N1cnZ5IHF1b3Rlc5Q=\n", "", "“curvy quotes”", ""},
		{"encoded subject", "Subject: =?iso-8859-1?q?K=F6ln?= =?utf-8?b?4pyT?=\n\nx\n", "Köln✓", "x", ""},
		{"alternative prefers plain", `Content-Type: multipart/alternative; boundary="b1"

--b1
Content-Type: text/html

<p>HTML <b>version</b></p>
--b1
Content-Type: text/plain

Plain version
--b1--
`, "", "Plain version", ""},
		{"html only is stripped", `Content-Type: text/html; charset=utf-8

<html><head><title>T</title><style>p{color:red}</style></head>
<body><p>Dear&nbsp;customer,</p><p>Your code is <b>4711</b>.<br>Thanks &amp; bye</p><script>alert(1)</script></body></html>
`, "", "Dear\u00a0customer,\n\nYour code is 4711.\nThanks & bye", ""},
		{"mixed with attachment and nested alternative", `Content-Type: multipart/mixed; boundary=outer

--outer
Content-Type: text/plain; name=notes.txt
Content-Disposition: attachment; filename=notes.txt

attached notes, not the message
--outer
Content-Type: multipart/alternative; boundary=inner

--inner
Content-Type: text/plain; charset=us-ascii

The message
--inner--
--outer--
`, "", "The message", ""},
		{"no text part", "Content-Type: image/png\n\nPNG\n", "", "", "no text"},
		{"bad multipart", "Content-Type: multipart/mixed\n\nx\n", "", "", "no boundary"},
		{"unknown charset", "Content-Type: text/plain; charset=x-klingon\n\nx\n", "", "", "charset"},
		{"invalid UTF-8", "Content-Type: text/plain; charset=utf-8\n\n\xff\xfe\n", "", "", "not valid"},
		{"not a mail", "no header line\n", "", "", "cannot be read"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, err := parseMail(crlf(c.mail))
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err = %v, want one with %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.Subject != c.subject || p.Text != c.text {
				t.Fatalf("parsed subject %q text %q, want %q %q", p.Subject, p.Text, c.subject, c.text)
			}
		})
	}
}

func TestParseMailHeaders(t *testing.T) {
	p, err := parseMail(crlf("Message-ID:  <abc@host>\nX-Smsgw-From: ACME\n\nx\n"))
	if err != nil || p.MessageID != "abc@host" || p.SMSFrom != "ACME" {
		t.Fatalf("%+v, %v", p, err)
	}
}

func FuzzParseMail(f *testing.F) {
	f.Add(crlf("Subject: Hi\n\nHello\n"))
	f.Add(crlf("Content-Type: multipart/alternative; boundary=b\n\n--b\nContent-Type: text/html\n\n<p>x</p>\n--b--\n"))
	f.Add(crlf("Content-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: base64\n\n5OT2\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		p, err := parseMail(raw)
		if err != nil {
			return
		}
		if !utf8.ValidString(p.Text) {
			t.Fatalf("text %q is not UTF-8", p.Text)
		}
		if p.Text != strings.TrimSpace(p.Text) {
			t.Fatalf("text %q is not trimmed", p.Text)
		}
	})
}
