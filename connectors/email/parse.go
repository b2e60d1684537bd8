package email

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"regexp"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/html"
	"golang.org/x/text/encoding/htmlindex"
)

// maxMIMEDepth bounds how deeply multiparts may nest.
const maxMIMEDepth = 8

// errNoText means a mail holds no text/plain or text/html part.
var errNoText = errors.New("the mail has no text: send text/plain (or text/html)")

// parsedMail is what an email contributes to an SMS.
type parsedMail struct {
	Subject   string
	Text      string // the body as plain text, trimmed, without a signature
	MessageID string
	SMSFrom   string // the X-Smsgw-From header: the SMS sender asked for, if any
}

// parseMail reads a message (RFC 5322, MIME): the text/plain body, or the
// first text/plain part of a multipart message, or, when there is only
// HTML, that HTML as text. Transfer encodings and character sets are
// decoded. Errors say what is wrong in words a sender can act on.
func parseMail(raw []byte) (parsedMail, error) {
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return parsedMail{}, fmt.Errorf("the mail cannot be read: %w", err)
	}
	dec := mime.WordDecoder{CharsetReader: charsetReader}
	subject, err := dec.DecodeHeader(m.Header.Get("Subject"))
	if err != nil {
		subject = m.Header.Get("Subject")
	}
	p := parsedMail{
		Subject:   strings.TrimSpace(subject),
		MessageID: strings.Trim(strings.TrimSpace(m.Header.Get("Message-Id")), "<>"),
		SMSFrom:   strings.TrimSpace(m.Header.Get("X-Smsgw-From")),
	}
	var found candidates
	if err := found.walk(m.Header.Get("Content-Type"), m.Header.Get("Content-Transfer-Encoding"), "", m.Body, 0); err != nil {
		return p, err
	}
	switch {
	case found.plain != nil:
		p.Text = *found.plain
	case found.html != nil:
		p.Text = htmlToText(*found.html)
	default:
		return p, errNoText
	}
	p.Text = tidy(p.Text)
	return p, nil
}

// candidates are the first text/plain and text/html bodies found.
type candidates struct {
	plain, html *string
}

func (c *candidates) walk(contentType, transferEncoding, disposition string, body io.Reader, depth int) error {
	if depth > maxMIMEDepth {
		return fmt.Errorf("the mail nests multiparts more than %d deep", maxMIMEDepth)
	}
	if contentType == "" {
		contentType = "text/plain; charset=us-ascii"
	}
	mediaType, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return fmt.Errorf("the Content-Type %q cannot be read: %w", contentType, err)
	}
	if d, _, err := mime.ParseMediaType(disposition); err == nil && d == "attachment" {
		return nil
	}
	switch {
	case strings.HasPrefix(mediaType, "multipart/"):
		boundary := params["boundary"]
		if boundary == "" {
			return fmt.Errorf("the %s part has no boundary", mediaType)
		}
		mr := multipart.NewReader(body, boundary)
		for {
			part, err := mr.NextRawPart()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("the %s part cannot be read: %w", mediaType, err)
			}
			err = c.walk(part.Header.Get("Content-Type"), part.Header.Get("Content-Transfer-Encoding"),
				part.Header.Get("Content-Disposition"), part, depth+1)
			if err != nil {
				return err
			}
		}
	case mediaType == "text/plain" && c.plain == nil, mediaType == "text/html" && c.html == nil:
		text, err := decodeBody(body, transferEncoding, params["charset"])
		if err != nil {
			return err
		}
		if mediaType == "text/plain" {
			c.plain = &text
		} else {
			c.html = &text
		}
	}
	return nil
}

// decodeBody undoes the transfer encoding and converts the charset to UTF-8.
func decodeBody(body io.Reader, transferEncoding, charset string) (string, error) {
	switch strings.ToLower(strings.TrimSpace(transferEncoding)) {
	case "quoted-printable":
		body = quotedprintable.NewReader(body)
	case "base64":
		body = base64.NewDecoder(base64.StdEncoding, &lineJoiner{r: body})
	case "", "7bit", "8bit", "binary":
	default:
		return "", fmt.Errorf("the transfer encoding %q is not supported", transferEncoding)
	}
	r, err := charsetReader(charset, body)
	if err != nil {
		return "", err
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return "", fmt.Errorf("the body cannot be decoded: %w", err)
	}
	if !utf8.Valid(b) {
		return "", fmt.Errorf("the body is not valid %s", charsetName(charset))
	}
	return string(b), nil
}

// charsetReader converts from a MIME charset to UTF-8 (any WHATWG label:
// utf-8, iso-8859-1, windows-1252, shift_jis and so on).
func charsetReader(charset string, r io.Reader) (io.Reader, error) {
	switch strings.ToLower(strings.TrimSpace(charset)) {
	case "", "utf-8", "utf8", "us-ascii", "ascii":
		return r, nil
	}
	enc, err := htmlindex.Get(charset)
	if err != nil {
		return nil, fmt.Errorf("the charset %q is not supported", charset)
	}
	return enc.NewDecoder().Reader(r), nil
}

func charsetName(charset string) string {
	if charset == "" {
		return "UTF-8"
	}
	return charset
}

// lineJoiner drops CR and LF, which base64 bodies carry between lines.
type lineJoiner struct{ r io.Reader }

func (l *lineJoiner) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	out := p[:0]
	for _, b := range p[:n] {
		if b != '\r' && b != '\n' {
			out = append(out, b)
		}
	}
	if len(out) == 0 && n > 0 && err == nil {
		return l.Read(p)
	}
	return len(out), err
}

// htmlToText keeps the text of an HTML body: no tags, scripts or styles,
// a line break for each block element and <br>, entities decoded.
func htmlToText(s string) string {
	var b strings.Builder
	z := html.NewTokenizer(strings.NewReader(s))
	skip := 0 // inside <script>, <style>, <head> or <title>
	for {
		switch z.Next() {
		case html.ErrorToken:
			return b.String()
		case html.TextToken:
			if skip == 0 {
				b.WriteString(collapseSpace(string(z.Text())))
			}
		case html.StartTagToken, html.SelfClosingTagToken:
			name, _ := z.TagName()
			switch string(name) {
			case "script", "style", "head", "title":
				skip++
			case "br", "p", "div", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "table":
				b.WriteString("\n")
			}
		case html.EndTagToken:
			name, _ := z.TagName()
			switch string(name) {
			case "script", "style", "head", "title":
				if skip > 0 {
					skip--
				}
			case "p", "div", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "table":
				b.WriteString("\n")
			}
		}
	}
}

var spaceRun = regexp.MustCompile(`[ \t\r\n\f]+`)

func collapseSpace(s string) string { return spaceRun.ReplaceAllString(s, " ") }

var blankLines = regexp.MustCompile(`\n{3,}`)

// tidy normalises line ends and spacing and cuts the signature (from a
// line "-- " on), so the SMS carries the message and nothing else.
func tidy(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	if i := strings.Index("\n"+s, "\n-- \n"); i >= 0 {
		s = s[:i]
	}
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(strings.TrimLeft(l, " \t"), " \t")
	}
	s = strings.Join(lines, "\n")
	return strings.TrimSpace(blankLines.ReplaceAllString(s, "\n\n"))
}
