package smpptest

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/linxGnu/gosmpp/data"
	"github.com/linxGnu/gosmpp/pdu"

	"github.com/smsgw/smsgw/connectors/smppsession"
	"github.com/smsgw/smsgw/connectors/smppstatus"
	"github.com/smsgw/smsgw/connectors/smppwire"
)

// session is one ESME connection. The SMPP session engine runs it; the
// simulator answers binds and submit_sm.
type session struct {
	smsc *SMSC
	id   int // 1 for the simulator's first connection
	smpp *smppsession.Session

	mu      sync.Mutex
	bindCmd uint32 // the bind command accepted, 0 while unbound
	sysID   string
}

// serveConn runs one connection until the peer leaves or unbinds, the
// simulator drops it, or ctx ends: then it is dropped without unbind, as a
// failing SMSC would drop it.
func (s *SMSC) serveConn(ctx context.Context, conn net.Conn) {
	s.mu.Lock()
	if s.ln == nil {
		// Accepted just before Stop: a stopped SMSC keeps no connection.
		s.mu.Unlock()
		_ = conn.Close()
		return
	}
	s.connections++
	sess := &session{smsc: s, id: s.connections}
	log := s.log.With("remote", conn.RemoteAddr().String())
	sess.smpp = smppsession.New(conn, smppsession.Config{
		ResponseTimeout: s.cfg.ResponseTimeout,
		Logger:          log,
		OnReceive:       s.countUnbind,
	}, smppsession.HandlerFunc(func(_ context.Context, f smppwire.Frame) { sess.handle(ctx, f, log) }))
	s.sessions[sess] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.sessions, sess)
		s.mu.Unlock()
	}()
	stop := context.AfterFunc(ctx, sess.smpp.Close)
	defer stop()
	if err := sess.smpp.Run(context.WithoutCancel(ctx)); errors.Is(err, smppwire.ErrBadLength) {
		log.Warn("closed a connection that sent an invalid command_length", "err", err)
	}
}

// countUnbind counts the unbind requests received, as they arrive.
func (s *SMSC) countUnbind(f smppwire.Frame) {
	if f.CommandID != smppwire.Unbind {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unbinds++
	s.notify()
}

// handle answers one request (the engine answers enquire_link, unbind and
// unknown commands). ctx is the simulator's: receipts outlive the session.
func (sess *session) handle(ctx context.Context, f smppwire.Frame, log *slog.Logger) {
	switch f.CommandID {
	case smppwire.BindTransceiver, smppwire.BindTransmitter, smppwire.BindReceiver:
		sess.bind(f, log)
	case smppwire.SubmitSM:
		sess.submit(ctx, f, log)
	case smppwire.QuerySM, smppwire.ReplaceSM, smppwire.CancelSM, smppwire.SubmitMulti, smppwire.DataSM, smppwire.DeliverSM:
		// Known, but not something this simulator does.
		_ = sess.write(smppwire.HeaderOnly(f.CommandID|smppwire.ResponseBit, smppstatus.ESME_RINVCMDID, f.Seq))
	default:
		_ = sess.write(smppwire.HeaderOnly(smppwire.GenericNack, smppstatus.ESME_RINVCMDID, f.Seq))
	}
}

// bind answers a bind request, checking the credentials. A refused bind
// closes the connection.
func (sess *session) bind(f smppwire.Frame, log *slog.Logger) {
	s := sess.smsc
	p, err := smppwire.Decode(f)
	req, ok := p.(*pdu.BindRequest)
	if err != nil || !ok {
		_ = sess.write(smppwire.HeaderOnly(f.CommandID|smppwire.ResponseBit, smppstatus.ESME_RSYSERR, f.Seq))
		sess.smpp.Close()
		return
	}
	resp := pdu.NewBindResp(*req)
	resp.SystemID = "smsgw-sim"
	sess.mu.Lock()
	already := sess.bindCmd != 0
	sess.mu.Unlock()
	switch {
	case already:
		resp.CommandStatus = data.CommandStatusType(smppstatus.ESME_RALYBND)
		_ = sess.write(smppwire.Encode(resp, f.Seq))
		return
	case s.cfg.SystemID != "" && req.SystemID != s.cfg.SystemID,
		s.cfg.Password != "" && req.Password != s.cfg.Password:
		log.Info("bind refused", "system_id", req.SystemID)
		resp.CommandStatus = data.CommandStatusType(smppstatus.ESME_RBINDFAIL)
		_ = sess.write(smppwire.Encode(resp, f.Seq))
		sess.smpp.Close()
		return
	}
	sess.mu.Lock()
	sess.bindCmd, sess.sysID = f.CommandID, req.SystemID
	sess.mu.Unlock()
	// Counted before bind_resp goes out: the engine answers an unbind on its
	// own goroutine, so a peer that unbinds at once must find its bind counted.
	s.mu.Lock()
	s.binds++
	s.notify()
	s.mu.Unlock()
	if err := sess.write(smppwire.Encode(resp, f.Seq)); err != nil {
		return
	}
	log.Info("bound", "system_id", req.SystemID, "command_id", fmt.Sprintf("0x%08X", f.CommandID))
}

// submit answers a submit_sm and arranges its receipt.
func (sess *session) submit(ctx context.Context, f smppwire.Frame, log *slog.Logger) {
	s := sess.smsc
	sess.mu.Lock()
	bindCmd, systemID := sess.bindCmd, sess.sysID
	sess.mu.Unlock()
	if bindCmd != smppwire.BindTransceiver && bindCmd != smppwire.BindTransmitter {
		_ = sess.write(smppwire.HeaderOnly(smppwire.SubmitSMResp, smppstatus.ESME_RINVBNDSTS, f.Seq))
		return
	}
	m, err := smppwire.DecodeMessage(smppwire.SubmitSM, f.Body())
	if err != nil {
		log.Warn("unreadable submit_sm", "err", err)
		_ = sess.write(smppwire.HeaderOnly(smppwire.GenericNack, smppstatus.ESME_RINVCMDLEN, f.Seq))
		return
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
	faults := s.faults
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
		sess.smpp.Close()
		return
	}

	if faults.Throttle || s.cfg.ThrottleEvery > 0 && n%s.cfg.ThrottleEvery == 0 {
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
		if want := m.RegisteredDelivery & 0x03; !faults.Silent && stat != "" && (want == 1 || want == 2 && stat != "DELIVRD") {
			job = &receiptJob{systemID: systemID, origin: sess, sub: sub, stat: stat, err: errCode,
				otherBind: faults.ReceiptOtherBind, repeat: faults.DuplicateReceipts}
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
	if faults.Silent {
		log.Info("submit_sm left unanswered", "submit_sm", n)
		return
	}

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

	if job != nil && faults.ReceiptBeforeResp {
		// The receipt goes out first; its answer is awaited after the response.
		target := sess
		if faults.ReceiptOtherBind {
			if other := s.receiver(systemID, nil, sess); other != nil {
				target = other
			}
		}
		receipt, sendErr := target.smpp.Start(ctx, job.pdu())
		if delay == 0 && !respond() {
			return
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
			resp, err := receipt.Wait(ctx)
			if s.recordAttempt(ctx, *job, 1, target.id, resp.Status, err) {
				return
			}
			if sleep(ctx, s.cfg.ReceiptRetryInterval) {
				s.deliverReceipt(ctx, *job, 2)
			}
		}()
		return
	}

	// receipt delivers the receipt a while after the response went out.
	receipt := func() {
		if job != nil && sleep(ctx, faults.ReceiptDelay) {
			s.deliverReceipt(ctx, *job, 1)
		}
	}
	if delay == 0 {
		if respond() && job != nil {
			s.bg.Add(1)
			go func() {
				defer s.bg.Done()
				receipt()
			}()
		}
		return
	}
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		if sleep(ctx, delay) && respond() {
			receipt()
		}
	}()
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

// write answers a request of the ESME's.
func (sess *session) write(raw []byte) error { return sess.smpp.Respond(raw) }

// request sends a deliver_sm and waits for its command_status.
func (sess *session) request(ctx context.Context, raw []byte) (uint32, error) {
	resp, err := sess.smpp.Call(ctx, raw)
	return resp.Status, err
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
