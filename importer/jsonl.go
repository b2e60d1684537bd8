package importer

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/smsgw/smsgw"
)

// JSONRecord is one line of the JSON-lines import format, for gateways
// other than Kannel (docs/import.md). Times are RFC 3339.
type JSONRecord struct {
	ID          string    `json:"id"`
	Customer    string    `json:"customer,omitempty"`
	Account     string    `json:"account,omitempty"`
	From        string    `json:"from"`
	To          string    `json:"to"`
	Text        string    `json:"text,omitempty"`
	Encoding    string    `json:"encoding,omitempty"` // "UCS2" to count the text as UCS-2; else from the text
	SubmittedAt time.Time `json:"submittedAt"`
	Status      string    `json:"status,omitempty"` // a gateway status; SENT when empty
	DoneAt      time.Time `json:"doneAt,omitzero"`
	Connector   string    `json:"connector,omitempty"`
	UpstreamID  string    `json:"upstreamId,omitempty"`
	ErrorCode   string    `json:"errorCode,omitempty"`
	ErrorText   string    `json:"errorText,omitempty"`
}

// JSONLines reads a file of JSONRecord lines. The position of a record is
// its line number; a line still being written (no newline yet) is read once
// it is whole, so a file another program appends to can be followed.
type JSONLines struct {
	path, name string
	f          *os.File
	r          *bufio.Reader
	line       int64  // lines read so far
	partial    []byte // the start of a line with no newline yet
}

// OpenJSONLines opens a JSON-lines file; name names the source ("jsonl"
// when empty).
func OpenJSONLines(path, name string) (*JSONLines, error) {
	if name == "" {
		name = "jsonl"
	}
	s := &JSONLines{path: path, name: name}
	if err := s.reopen(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *JSONLines) reopen() error {
	if s.f != nil {
		s.f.Close()
	}
	f, err := os.Open(s.path)
	if err != nil {
		return fmt.Errorf("jsonl: %w", err)
	}
	s.f, s.r, s.line, s.partial = f, bufio.NewReaderSize(f, 64<<10), 0, nil
	return nil
}

// Close closes the file.
func (s *JSONLines) Close() error { return s.f.Close() }

// Name implements Source.
func (s *JSONLines) Name() string { return s.name }

// Remaining implements Source: the whole lines after line after.
func (s *JSONLines) Remaining(_ context.Context, after int64) (int64, error) {
	f, err := os.Open(s.path)
	if err != nil {
		return 0, fmt.Errorf("jsonl: %w", err)
	}
	defer f.Close()
	var n int64
	buf := make([]byte, 64<<10)
	for {
		k, err := f.Read(buf)
		n += int64(bytes.Count(buf[:k], []byte{'\n'}))
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return 0, fmt.Errorf("jsonl: %w", err)
		}
	}
	return max(n-after, 0), nil
}

// readLine returns the next whole line, or ok false at the end of what is
// written so far.
func (s *JSONLines) readLine() (line []byte, ok bool, err error) {
	chunk, err := s.r.ReadBytes('\n')
	s.partial = append(s.partial, chunk...)
	if errors.Is(err, io.EOF) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("jsonl: %w", err)
	}
	line, s.partial = s.partial, nil
	s.line++
	return line, true, nil
}

// Next implements Source.
func (s *JSONLines) Next(ctx context.Context, after int64, n int) ([]Item, error) {
	if s.line != after {
		if err := s.reopen(); err != nil {
			return nil, err
		}
		for s.line < after {
			if _, ok, err := s.readLine(); err != nil || !ok {
				return nil, err
			}
		}
	}
	var items []Item
	for len(items) < n && ctx.Err() == nil {
		line, ok, err := s.readLine()
		if err != nil {
			return nil, err
		}
		if !ok {
			break
		}
		items = append(items, parseJSONLine(s.line, line))
	}
	return items, ctx.Err()
}

// parseJSONLine reads one line into an Item.
func parseJSONLine(pos int64, line []byte) Item {
	it := Item{Pos: pos}
	if len(bytes.TrimSpace(line)) == 0 {
		it.Skip = "blank line"
		return it
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	var r JSONRecord
	if err := dec.Decode(&r); err != nil {
		it.Refuse = "not a JSON record of the import format"
		var ue *json.UnmarshalTypeError
		if errors.As(err, &ue) {
			it.Refuse = fmt.Sprintf("field %q has the wrong type", ue.Field)
		} else if strings.HasPrefix(err.Error(), "json: unknown field") {
			it.Refuse = "unknown field " + strings.TrimPrefix(err.Error(), "json: unknown field ")
		}
		return it
	}
	m := &Message{
		SourceID: r.ID, Account: r.Account, CustomerID: r.Customer, From: r.From, To: r.To, Text: r.Text,
		UCS2: strings.EqualFold(r.Encoding, "UCS2"), SubmittedAt: r.SubmittedAt, Status: smsgw.Status(strings.ToUpper(r.Status)),
		DoneAt: r.DoneAt, Connector: r.Connector, UpstreamID: r.UpstreamID, ErrorCode: r.ErrorCode, ErrorText: r.ErrorText,
	}
	if m.Status.Final() && m.DoneAt.IsZero() {
		m.DoneAt = m.SubmittedAt
	}
	it.Message = m
	return it
}
