// Package esme is a minimal SMPP client (ESME) for tests and benchmarks of
// the gateway's SMPP server: it binds, sends any PDU and waits for its
// response, keeps many requests outstanding at once, answers the server's
// enquire_link, unbind and deliver_sm itself, and records every request
// the server sent.
package esme

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/smsgw/smsgw/connectors/smppserver"
	"github.com/smsgw/smsgw/connectors/smppwire"
)

// Client is one connection to an SMSC.
type Client struct {
	conn net.Conn
	wmu  sync.Mutex
	seq  atomic.Uint32

	mu       sync.Mutex
	answer   func(smppwire.Frame) uint32
	pending  map[uint32]chan smppwire.Frame
	received []smppwire.Frame // requests from the server, in order
	changed  chan struct{}
	done     chan struct{}
	err      error
}

// Dial connects to addr; a non-nil tlsConfig makes it a TLS connection.
func Dial(ctx context.Context, addr string, tlsConfig *tls.Config) (*Client, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if tlsConfig != nil {
		tc := tls.Client(conn, tlsConfig)
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, err
		}
		conn = tc
	}
	return New(conn), nil
}

// New runs a client on an open connection.
func New(conn net.Conn) *Client {
	c := &Client{conn: conn, pending: map[uint32]chan smppwire.Frame{}, changed: make(chan struct{}), done: make(chan struct{})}
	go c.readLoop()
	return c
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Done is closed when the connection has ended; Err then says why.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err is why the connection ended.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *Client) readLoop() {
	r := bufio.NewReaderSize(c.conn, 32<<10)
	var err error
	for {
		var f smppwire.Frame
		f, err = smppwire.ReadFrame(r)
		if err != nil {
			break
		}
		if f.IsResponse() {
			c.mu.Lock()
			ch := c.pending[f.Seq]
			delete(c.pending, f.Seq)
			c.mu.Unlock()
			if ch != nil {
				ch <- f
			}
			continue
		}
		switch f.CommandID {
		case smppwire.EnquireLink:
			_ = c.Write(smppwire.HeaderOnly(smppwire.EnquireLinkResp, 0, f.Seq))
		case smppwire.Unbind:
			_ = c.Write(smppwire.HeaderOnly(smppwire.UnbindResp, 0, f.Seq))
		case smppwire.DeliverSM, smppwire.DataSM:
			var status uint32
			c.mu.Lock()
			answer := c.answer
			c.mu.Unlock()
			if answer != nil {
				status = answer(f)
			}
			_ = c.Write(smppwire.MessageIDResp(f.CommandID|smppwire.ResponseBit, status, f.Seq, ""))
		}
		c.mu.Lock()
		c.received = append(c.received, f)
		close(c.changed)
		c.changed = make(chan struct{})
		c.mu.Unlock()
	}
	c.mu.Lock()
	c.err = err
	for seq, ch := range c.pending {
		close(ch)
		delete(c.pending, seq)
	}
	c.mu.Unlock()
	close(c.done)
}

// SetAnswer sets the command_status given to each deliver_sm or data_sm
// received; without one they are answered ESME_ROK.
func (c *Client) SetAnswer(answer func(smppwire.Frame) uint32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.answer = answer
}

// Write sends raw bytes as they are.
func (c *Client) Write(raw []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err := c.conn.Write(raw)
	return err
}

// Start sends a request with the next sequence number and returns the
// channel its response arrives on (closed without one if the connection ends).
func (c *Client) Start(raw []byte) (<-chan smppwire.Frame, error) {
	seq := c.seq.Add(1)
	smppwire.SetSeq(raw, seq)
	ch := make(chan smppwire.Frame, 1)
	c.mu.Lock()
	select {
	case <-c.done:
		c.mu.Unlock()
		return nil, fmt.Errorf("connection ended: %v", c.err)
	default:
	}
	c.pending[seq] = ch
	c.mu.Unlock()
	if err := c.Write(raw); err != nil {
		c.mu.Lock()
		delete(c.pending, seq)
		c.mu.Unlock()
		return nil, err
	}
	return ch, nil
}

// Call sends a request and waits for its response.
func (c *Client) Call(ctx context.Context, raw []byte) (smppwire.Frame, error) {
	ch, err := c.Start(raw)
	if err != nil {
		return smppwire.Frame{}, err
	}
	select {
	case f, ok := <-ch:
		if !ok {
			return smppwire.Frame{}, fmt.Errorf("connection ended before the response: %v", c.Err())
		}
		return f, nil
	case <-ctx.Done():
		return smppwire.Frame{}, ctx.Err()
	}
}

// Bind sends a bind of the given command and returns its response.
func (c *Client) Bind(ctx context.Context, cmd uint32, systemID, password string) (smppwire.Frame, error) {
	return c.Call(ctx, BindPDU(cmd, systemID, password))
}

// BindPDU encodes a bind request (interface_version 0x34).
func BindPDU(cmd uint32, systemID, password string) []byte {
	b := smppwire.HeaderOnly(cmd, 0, 0)
	b = append(append(b, systemID...), 0)
	b = append(append(b, password...), 0)
	b = append(b, 0)          // system_type
	b = append(b, 0x34, 0, 0) // interface_version, addr_ton, addr_npi
	b = append(b, 0)          // address_range
	return fixLength(b)
}

// Submit sends a submit_sm and returns its command_status and message_id.
func (c *Client) Submit(ctx context.Context, m smppwire.Message) (status uint32, messageID string, err error) {
	f, err := c.Call(ctx, smppserver.EncodeMessage(smppwire.SubmitSM, 0, m))
	if err != nil {
		return 0, "", err
	}
	return f.Status, MessageID(f), nil
}

// Unbind sends unbind and waits for unbind_resp.
func (c *Client) Unbind(ctx context.Context) error {
	f, err := c.Call(ctx, smppwire.HeaderOnly(smppwire.Unbind, 0, 0))
	if err != nil {
		return err
	}
	if f.CommandID != smppwire.UnbindResp || f.Status != 0 {
		return fmt.Errorf("unbind answered 0x%08X status 0x%08X", f.CommandID, f.Status)
	}
	return nil
}

// Received returns the requests the server sent so far.
func (c *Client) Received() []smppwire.Frame {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]smppwire.Frame(nil), c.received...)
}

// WaitFor returns the first request from the server for which match is true.
func (c *Client) WaitFor(ctx context.Context, match func(smppwire.Frame) bool) (smppwire.Frame, error) {
	for {
		c.mu.Lock()
		for _, f := range c.received {
			if match(f) {
				c.mu.Unlock()
				return f, nil
			}
		}
		changed := c.changed
		c.mu.Unlock()
		select {
		case <-changed:
		case <-c.done:
			if !matchAny(c.Received(), match) {
				return smppwire.Frame{}, fmt.Errorf("connection ended (%v) without the PDU", c.Err())
			}
		case <-ctx.Done():
			return smppwire.Frame{}, fmt.Errorf("waiting for a PDU from the server: %w", ctx.Err())
		}
	}
}

func matchAny(fs []smppwire.Frame, match func(smppwire.Frame) bool) bool {
	for _, f := range fs {
		if match(f) {
			return true
		}
	}
	return false
}

// MessageID reads the message_id of a submit_sm_resp, data_sm_resp or
// query_sm_resp ("" when there is none).
func MessageID(f smppwire.Frame) string {
	body := f.Body()
	for i, b := range body {
		if b == 0 {
			return string(body[:i])
		}
	}
	return ""
}

// ErrNoBody is returned by DecodeDeliver for a PDU without a body.
var ErrNoBody = errors.New("PDU has no body")

// DecodeDeliver reads the body of a deliver_sm or data_sm.
func DecodeDeliver(f smppwire.Frame) (smppwire.Message, error) {
	if len(f.Body()) == 0 {
		return smppwire.Message{}, ErrNoBody
	}
	return smppwire.DecodeMessage(f.CommandID, f.Body())
}

func fixLength(b []byte) []byte {
	n := uint32(len(b))
	b[0], b[1], b[2], b[3] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
	return b
}
