// Package esme is a minimal SMPP client (ESME) for tests and benchmarks of
// the gateway's SMPP server: it binds, sends any PDU and waits for its
// response, keeps many requests outstanding at once, answers the server's
// deliver_sm itself (its session answers enquire_link and unbind), and
// records every request the server sent. It sends no enquire_link of its
// own, so tests see exactly what the server does.
package esme

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/smsgw/smsgw/connectors/smppserver"
	"github.com/smsgw/smsgw/connectors/smppsession"
	"github.com/smsgw/smsgw/connectors/smppstatus"
	"github.com/smsgw/smsgw/connectors/smppwire"
)

// responseTimeout is longer than any test waits: a caller's context decides.
const responseTimeout = time.Hour

// Client is one connection to an SMSC.
type Client struct {
	smpp *smppsession.Session

	mu       sync.Mutex
	answer   func(smppwire.Frame) uint32
	received []smppwire.Frame // requests from the server, in order
	changed  chan struct{}
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
	c := &Client{changed: make(chan struct{})}
	c.smpp = smppsession.New(conn, smppsession.Config{ResponseTimeout: responseTimeout, OnReceive: c.record}, c)
	go func() { _ = c.smpp.Run(context.Background()) }()
	return c
}

// Close closes the connection.
func (c *Client) Close() error {
	c.smpp.Close()
	return nil
}

// Done is closed when the connection has ended; Err then says why.
func (c *Client) Done() <-chan struct{} { return c.smpp.Done() }

// Err is why the connection ended.
func (c *Client) Err() error { return c.smpp.Err() }

// record keeps every request the server sends.
func (c *Client) record(f smppwire.Frame) {
	if f.IsResponse() {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.received = append(c.received, f)
	close(c.changed)
	c.changed = make(chan struct{})
}

// HandleRequest answers deliver_sm and data_sm with the status SetAnswer
// gives, and refuses anything else an ESME is not sent.
func (c *Client) HandleRequest(_ context.Context, f smppwire.Frame) {
	switch f.CommandID {
	case smppwire.DeliverSM, smppwire.DataSM:
		var status uint32
		c.mu.Lock()
		answer := c.answer
		c.mu.Unlock()
		if answer != nil {
			status = answer(f)
		}
		_ = c.smpp.Respond(smppwire.MessageIDResp(f.CommandID|smppwire.ResponseBit, status, f.Seq, ""))
	default:
		_ = c.smpp.Respond(smppwire.HeaderOnly(smppwire.GenericNack, smppstatus.ESME_RINVCMDID, f.Seq))
	}
}

// SetAnswer sets the command_status given to each deliver_sm or data_sm
// received; without one they are answered ESME_ROK.
func (c *Client) SetAnswer(answer func(smppwire.Frame) uint32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.answer = answer
}

// Start sends a request with the next sequence number and returns the
// channel its response arrives on (closed without one if the connection ends).
func (c *Client) Start(raw []byte) (<-chan smppwire.Frame, error) {
	p, err := c.smpp.Start(context.Background(), raw)
	if err != nil {
		return nil, err
	}
	ch := make(chan smppwire.Frame, 1)
	go func() {
		defer close(ch)
		if f, err := p.Wait(context.Background()); err == nil {
			ch <- f
		}
	}()
	return ch, nil
}

// Call sends a request and waits for its response.
func (c *Client) Call(ctx context.Context, raw []byte) (smppwire.Frame, error) {
	return c.smpp.Call(ctx, raw)
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

// Unbind sends unbind, waits for unbind_resp and closes the connection.
func (c *Client) Unbind(ctx context.Context) error {
	return c.smpp.Unbind(ctx)
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
		case <-c.Done():
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
