package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/connectors/smppserver"
	"github.com/smsgw/smsgw/connectors/smppserver/esme"
	"github.com/smsgw/smsgw/connectors/smppstatus"
	"github.com/smsgw/smsgw/connectors/smppwire"
)

// smppLoad is the load tool in SMPP mode: one transceiver bind submits with
// up to window submit_sm outstanding and takes its receipts on the same bind.
type smppLoad struct {
	addr, systemID, password string
	window                   int
}

func runSMPPLoad(ctx context.Context, spec loadSpec, sl smppLoad) (*loadReport, error) {
	tr := newTracker(spec.n, spec.inFlight)
	c, err := esme.Dial(ctx, sl.addr, nil)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", sl.addr, err)
	}
	defer c.Close()
	c.SetAnswer(func(f smppwire.Frame) uint32 {
		m, err := esme.DecodeDeliver(f)
		if err != nil || m.ESMClass&0x04 == 0 {
			return 0 // not a receipt
		}
		rt, err := smsgw.ParseReceiptText(string(m.ShortMessage))
		id := smppwire.TLVString(m.TLVs[smppwire.TagReceiptedMessageID])
		if id == "" && err == nil {
			id = rt.ID
		}
		tr.final(id, rt.Stat)
		return 0
	})
	bindCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	resp, err := c.Bind(bindCtx, smppwire.BindTransceiver, sl.systemID, sl.password)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("bind: %w", err)
	}
	if resp.Status != 0 {
		return nil, fmt.Errorf("bind refused with command_status 0x%08X", resp.Status)
	}

	slots := make(chan struct{}, max(sl.window, 1))
	var wg sync.WaitGroup
	start := time.Now()
	paced(ctx, spec, func(i int) bool {
		if !tr.enter(ctx, spec.wait) {
			return false
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return false
		}
		raw := smppserver.EncodeMessage(smppwire.SubmitSM, 0, smppwire.Message{
			SourceTON: 5, Source: "LOADTEST", DestTON: 1, DestNPI: 1,
			Dest:               fmt.Sprintf("%s%07d", spec.to[1:], i+1),
			RegisteredDelivery: 1, ShortMessage: []byte(spec.text),
		})
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			first := time.Now()
			for {
				t0 := time.Now()
				ch, err := c.Start(raw)
				if err != nil {
					tr.failed("submit_sm: " + err.Error())
					return
				}
				f, ok := <-ch
				id := esme.MessageID(f)
				switch {
				case !ok:
					tr.failed("connection ended before submit_sm_resp")
				case f.Status == smppstatus.ESME_RTHROTTLED:
					// Refused for the backlog: the same message again, later.
					tr.throttled()
					if sleepCtx(ctx, throttledPause) != nil {
						tr.failed("stopped while throttled")
						return
					}
					continue
				case f.Status != 0 || id == "":
					tr.failed(fmt.Sprintf("submit_sm_resp command_status 0x%08X", f.Status))
				default:
					tr.accepted(id, first, time.Since(t0))
				}
				return
			}
		}()
		return true
	})
	wg.Wait()
	submitted := time.Since(start)

	tr.wait(ctx, spec.wait)
	rep := tr.report(start, submitted, isDelivrd)
	_ = c.Unbind(ctx)
	if rep.accepted == 0 && rep.failed > 0 {
		return rep, errors.New("no submit_sm accepted: " + rep.firstError)
	}
	return rep, nil
}

// throttledPause is how long a submit_sm refused with ESME_RTHROTTLED
// waits before it is sent again (SMPP carries no retry time).
const throttledPause = time.Second

func isDelivrd(stat string) bool { return stat == "DELIVRD" }
