package smpptest

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/linxGnu/gosmpp/data"
	"github.com/linxGnu/gosmpp/pdu"

	"github.com/smsgw/smsgw/connectors/smppstatus"
	"github.com/smsgw/smsgw/connectors/smppwire"
)

// writeTimeout bounds one write to a peer that stopped reading.
const writeTimeout = 10 * time.Second

// session is one ESME connection. One goroutine reads it; writes are serialized.
type session struct {
	smsc *SMSC
	id   int // 1 for the simulator's first connection
	conn net.Conn
	seq  atomic.Uint32

	writeMu sync.Mutex

	mu      sync.Mutex
	bindCmd uint32 // the bind command accepted, 0 while unbound
	sysID   string
	pending map[uint32]chan uint32 // deliver_sm awaiting deliver_sm_resp: their command_status
	done    chan struct{}
}

// serveConn runs one connection until the peer leaves, unbinds, sends
// something that breaks the framing, or ctx ends.
func (s *SMSC) serveConn(ctx context.Context, conn net.Conn) {
	sess := &session{smsc: s, conn: conn, pending: make(map[uint32]chan uint32), done: make(chan struct{})}
	s.mu.Lock()
	if s.ln == nil {
		// Accepted just before Stop: a stopped SMSC keeps no connection.
		s.mu.Unlock()
		_ = conn.Close()
		close(sess.done)
		return
	}
	s.connections++
	sess.id = s.connections
	s.sessions[sess] = struct{}{}
	s.mu.Unlock()
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer func() {
		stop()
		_ = conn.Close()
		s.mu.Lock()
		delete(s.sessions, sess)
		s.mu.Unlock()
		close(sess.done)
	}()

	log := s.log.With("remote", conn.RemoteAddr().String())
	r := bufio.NewReader(conn)
	for {
		f, err := smppwire.ReadFrame(r)
		if err != nil {
			if errors.Is(err, smppwire.ErrBadLength) {
				log.Warn("closing a connection that sent an invalid command_length", "err", err)
				_ = sess.write(smppwire.HeaderOnly(smppwire.GenericNack, smppstatus.ESME_RINVCMDLEN, f.Seq))
			}
			return
		}
		if !sess.handle(ctx, f, log) {
			return
		}
	}
}

// handle answers one PDU and reports whether the connection stays open.
func (sess *session) handle(ctx context.Context, f smppwire.Frame, log *slog.Logger) bool {
	if f.IsResponse() {
		sess.mu.Lock()
		ch := sess.pending[f.Seq]
		delete(sess.pending, f.Seq)
		sess.mu.Unlock()
		if ch != nil {
			ch <- f.Status
		}
		return true
	}
	switch f.CommandID {
	case smppwire.BindTransceiver, smppwire.BindTransmitter, smppwire.BindReceiver:
		return sess.bind(f, log)
	case smppwire.EnquireLink:
		return sess.write(smppwire.HeaderOnly(smppwire.EnquireLinkResp, 0, f.Seq)) == nil
	case smppwire.Unbind:
		sess.smsc.mu.Lock()
		sess.smsc.unbinds++
		sess.smsc.notify()
		sess.smsc.mu.Unlock()
		_ = sess.write(smppwire.HeaderOnly(smppwire.UnbindResp, 0, f.Seq))
		return false
	case smppwire.SubmitSM:
		return sess.submit(ctx, f, log)
	case smppwire.QuerySM, smppwire.ReplaceSM, smppwire.CancelSM, smppwire.SubmitMulti, smppwire.DataSM, smppwire.DeliverSM:
		// Known, but not something this simulator does.
		return sess.write(smppwire.HeaderOnly(f.CommandID|smppwire.ResponseBit, smppstatus.ESME_RINVCMDID, f.Seq)) == nil
	default:
		return sess.write(smppwire.HeaderOnly(smppwire.GenericNack, smppstatus.ESME_RINVCMDID, f.Seq)) == nil
	}
}

// bind answers a bind request, checking the credentials.
func (sess *session) bind(f smppwire.Frame, log *slog.Logger) bool {
	s := sess.smsc
	p, err := smppwire.Decode(f)
	req, ok := p.(*pdu.BindRequest)
	if err != nil || !ok {
		_ = sess.write(smppwire.HeaderOnly(f.CommandID|smppwire.ResponseBit, smppstatus.ESME_RSYSERR, f.Seq))
		return false
	}
	resp := pdu.NewBindResp(*req)
	resp.SystemID = "smsgw-sim"
	sess.mu.Lock()
	already := sess.bindCmd != 0
	sess.mu.Unlock()
	switch {
	case already:
		resp.CommandStatus = data.CommandStatusType(smppstatus.ESME_RALYBND)
		return sess.write(smppwire.Encode(resp, f.Seq)) == nil
	case s.cfg.SystemID != "" && req.SystemID != s.cfg.SystemID,
		s.cfg.Password != "" && req.Password != s.cfg.Password:
		log.Info("bind refused", "system_id", req.SystemID)
		resp.CommandStatus = data.CommandStatusType(smppstatus.ESME_RBINDFAIL)
		_ = sess.write(smppwire.Encode(resp, f.Seq))
		return false
	}
	sess.mu.Lock()
	sess.bindCmd, sess.sysID = f.CommandID, req.SystemID
	sess.mu.Unlock()
	if err := sess.write(smppwire.Encode(resp, f.Seq)); err != nil {
		return false
	}
	s.mu.Lock()
	s.binds++
	s.notify()
	s.mu.Unlock()
	log.Info("bound", "system_id", req.SystemID, "command_id", fmt.Sprintf("0x%08X", f.CommandID))
	return true
}

// submit answers a submit_sm and arranges its receipt.
func (sess *session) submit(ctx context.Context, f smppwire.Frame, log *slog.Logger) bool {
	s := sess.smsc
	sess.mu.Lock()
	bindCmd, systemID := sess.bindCmd, sess.sysID
	sess.mu.Unlock()
	if bindCmd != smppwire.BindTransceiver && bindCmd != smppwire.BindTransmitter {
		return sess.write(smppwire.HeaderOnly(smppwire.SubmitSMResp, smppstatus.ESME_RINVBNDSTS, f.Seq)) == nil
	}
	m, err := smppwire.DecodeMessage(smppwire.SubmitSM, f.Body())
	if err != nil {
		log.Warn("unreadable submit_sm", "err", err)
		return sess.write(smppwire.HeaderOnly(smppwire.GenericNack, smppstatus.ESME_RINVCMDLEN, f.Seq)) == nil
	}

	sub := Submitted{
		SystemID:   systemID,
		Bind:       sess.id,
		SourceAddr: m.Source, SourceTON: m.SourceTON, SourceNPI: m.SourceNPI,
		DestAddr: m.Dest, DestTON: m.DestTON, DestNPI: m.DestNPI,
		DataCoding: m.DataCoding, ESMClass: m.ESMClass, RegisteredDelivery: m.RegisteredDelivery,
		ValidityPeriod: m.ValidityPeriod,
		ShortMessage:   m.Text(),
		SAR:            sarFrom(m.TLVs),
		ReceivedAt:     time.Now().UTC(),
	}
	s.mu.Lock()
	s.received++
	n := s.received
	s.perDest[m.Dest]++
	nDest := s.perDest[m.Dest]
	drop := s.cfg.DropAfter > 0 && n >= s.cfg.DropAfter && !s.dropped
	if drop {
		s.dropped = true
		s.submits = append(s.submits, sub)
		s.notify()
	}
	s.mu.Unlock()
	if drop {
		log.Info("dropping the connection with submit_sm unanswered", "submit_sm", n)
		return false
	}

	if s.cfg.ThrottleEvery > 0 && n%s.cfg.ThrottleEvery == 0 {
		sub.Status = smppstatus.ESME_RTHROTTLED
	} else {
		sub.Status = s.cfg.SubmitStatus(m.Dest, nDest)
	}
	var resp []byte
	var job *receiptJob
	if sub.Status == smppstatus.ESME_ROK {
		sub.UpstreamID, sub.ReceiptID = s.newIDs()
		resp = smppwire.MessageIDResp(smppwire.SubmitSMResp, 0, f.Seq, sub.UpstreamID)
		stat, errCode := s.cfg.Outcome(m.Dest)
		if want := m.RegisteredDelivery & 0x03; want == 1 || want == 2 && stat != "DELIVRD" {
			job = &receiptJob{systemID: systemID, origin: sess, sub: sub, stat: stat, err: errCode}
		}
	} else {
		// SMPP 3.4 §4.4.2: no body with a non-zero command_status.
		resp = smppwire.HeaderOnly(smppwire.SubmitSMResp, sub.Status, f.Seq)
	}
	s.mu.Lock()
	i := len(s.submits)
	s.submits = append(s.submits, sub)
	s.notify()
	s.mu.Unlock()

	// respond writes the submit_sm_resp and notes that it went out: before
	// writing, so that an ESME holding the response never sees it unanswered.
	respond := func() bool {
		s.mu.Lock()
		s.submits[i].Answered = true
		s.notify()
		s.mu.Unlock()
		if err := sess.write(resp); err != nil {
			s.mu.Lock()
			s.submits[i].Answered = false
			s.mu.Unlock()
			return false
		}
		return true
	}
	delay := s.cfg.RespDelay

	if job != nil && s.cfg.ReceiptBeforeResp {
		// The receipt goes out first; its answer is awaited after the response.
		target := sess
		if s.cfg.ReceiptOtherBind {
			if other := s.receiver(systemID, nil, sess); other != nil {
				target = other
			}
		}
		wait, sendErr := target.start(job.pdu())
		if delay == 0 && !respond() {
			return false
		}
		s.bg.Add(1)
		go func() {
			defer s.bg.Done()
			if delay > 0 && !(sleep(ctx, delay) && respond()) {
				return
			}
			if sendErr != nil {
				s.deliverReceipt(ctx, *job, 1)
				return
			}
			status, err := wait(ctx)
			if s.recordAttempt(ctx, *job, 1, target.id, status, err) {
				return
			}
			if sleep(ctx, s.cfg.ReceiptRetryInterval) {
				s.deliverReceipt(ctx, *job, 2)
			}
		}()
		return true
	}

	// receipt delivers the receipt a while after the response went out.
	receipt := func() {
		if job != nil && sleep(ctx, s.cfg.ReceiptDelay) {
			s.deliverReceipt(ctx, *job, 1)
		}
	}
	if delay == 0 {
		if !respond() {
			return false
		}
		if job != nil {
			s.bg.Add(1)
			go func() {
				defer s.bg.Done()
				receipt()
			}()
		}
		return true
	}
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		if sleep(ctx, delay) && respond() {
			receipt()
		}
	}()
	return true
}

func (sess *session) canReceive() bool {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	return sess.bindCmd == smppwire.BindTransceiver || sess.bindCmd == smppwire.BindReceiver
}

func (sess *session) systemID() string {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	return sess.sysID
}

func (sess *session) write(raw []byte) error {
	sess.writeMu.Lock()
	defer sess.writeMu.Unlock()
	_ = sess.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	_, err := sess.conn.Write(raw)
	return err
}

// start sends a request with the session's next sequence number and returns
// a function that waits for its command_status.
func (sess *session) start(raw []byte) (wait func(context.Context) (uint32, error), err error) {
	seq := sess.seq.Add(1) & 0x7FFFFFFF
	if seq == 0 {
		seq = sess.seq.Add(1)
	}
	smppwire.SetSeq(raw, seq)
	ch := make(chan uint32, 1)
	sess.mu.Lock()
	sess.pending[seq] = ch
	sess.mu.Unlock()
	forget := func() {
		sess.mu.Lock()
		delete(sess.pending, seq)
		sess.mu.Unlock()
	}
	if err := sess.write(raw); err != nil {
		forget()
		return nil, fmt.Errorf("sending: %w", err)
	}
	timeout := sess.smsc.cfg.ResponseTimeout
	return func(ctx context.Context) (uint32, error) {
		t := time.NewTimer(timeout)
		defer t.Stop()
		select {
		case status := <-ch:
			return status, nil
		case <-t.C:
			forget()
			return 0, fmt.Errorf("no response within %s", timeout)
		case <-sess.done:
			select {
			case status := <-ch:
				return status, nil
			default:
				return 0, errors.New("connection closed before the response")
			}
		case <-ctx.Done():
			forget()
			return 0, ctx.Err()
		}
	}, nil
}

// request sends a request and waits for its command_status.
func (sess *session) request(ctx context.Context, raw []byte) (uint32, error) {
	wait, err := sess.start(raw)
	if err != nil {
		return 0, err
	}
	return wait(ctx)
}

func sarFrom(tlvs map[uint16][]byte) *SAR {
	ref, total, seq := tlvs[smppwire.TagSarMsgRefNum], tlvs[smppwire.TagSarTotalSegments], tlvs[smppwire.TagSarSegmentSeqnum]
	if len(ref) != 2 || len(total) != 1 || len(seq) != 1 {
		return nil
	}
	return &SAR{Ref: binary.BigEndian.Uint16(ref), Total: total[0], Seq: seq[0]}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
