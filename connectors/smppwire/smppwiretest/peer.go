// Package smppwiretest speaks SMPP one PDU at a time over a connection, for
// tests that must see exactly what the other end sends, and when.
package smppwiretest

import (
	"bufio"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/smsgw/smsgw/connectors/smppwire"
)

// Wait bounds every read and write.
const Wait = 10 * time.Second

// Peer is one end of a connection under test.
type Peer struct {
	t    testing.TB
	conn net.Conn
	r    *bufio.Reader
	seq  uint32
}

// NewPeer speaks over conn, and closes it when the test ends.
func NewPeer(t testing.TB, conn net.Conn) *Peer {
	t.Cleanup(func() { conn.Close() })
	return &Peer{t: t, conn: conn, r: bufio.NewReader(conn)}
}

// Dial connects to addr over TCP.
func Dial(t testing.TB, addr string) *Peer {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, Wait)
	if err != nil {
		t.Fatal(err)
	}
	return NewPeer(t, conn)
}

// Send writes a PDU with the peer's next sequence number and returns that number.
func (p *Peer) Send(raw []byte) uint32 {
	p.t.Helper()
	p.seq++
	smppwire.SetSeq(raw, p.seq)
	p.Write(raw)
	return p.seq
}

// Write writes bytes as they are: an answer with the sequence number it
// answers, or bytes that are no PDU at all.
func (p *Peer) Write(raw []byte) {
	p.t.Helper()
	_ = p.conn.SetWriteDeadline(time.Now().Add(Wait))
	if _, err := p.conn.Write(raw); err != nil {
		p.t.Fatalf("writing a PDU: %v", err)
	}
}

// Read reads the next PDU.
func (p *Peer) Read() smppwire.Frame {
	p.t.Helper()
	_ = p.conn.SetReadDeadline(time.Now().Add(Wait))
	f, err := smppwire.ReadFrame(p.r)
	if err != nil {
		p.t.Fatalf("reading a PDU: %v", err)
	}
	return f
}

// ExpectClosed checks that the other end closes the connection without
// sending anything more.
func (p *Peer) ExpectClosed() {
	p.t.Helper()
	_ = p.conn.SetReadDeadline(time.Now().Add(Wait))
	if f, err := smppwire.ReadFrame(p.r); !errors.Is(err, io.EOF) {
		p.t.Fatalf("got %+v, %v; want the connection closed", f.Header, err)
	}
}

// ReadAll reads PDUs until the connection closes, and returns their command_ids.
func (p *Peer) ReadAll() []uint32 {
	var cmds []uint32
	for {
		_ = p.conn.SetReadDeadline(time.Now().Add(Wait))
		f, err := smppwire.ReadFrame(p.r)
		if err != nil {
			return cmds
		}
		cmds = append(cmds, f.CommandID)
	}
}

// ExpectQuiet checks that nothing arrives for d.
func (p *Peer) ExpectQuiet(d time.Duration) {
	p.t.Helper()
	_ = p.conn.SetReadDeadline(time.Now().Add(d))
	if f, err := smppwire.ReadFrame(p.r); err == nil {
		p.t.Fatalf("got %+v; want nothing for %s", f.Header, d)
	}
}

// Close closes the connection, as a peer that leaves.
func (p *Peer) Close() { p.conn.Close() }
