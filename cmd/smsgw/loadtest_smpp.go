package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/connectors/smppclient/smppwire"
	"github.com/smsgw/smsgw/connectors/smppserver"
	"github.com/smsgw/smsgw/connectors/smppserver/esme"
)

// smppLoad is the load tool in SMPP mode: one transceiver bind submits with
// up to window submit_sm outstanding and takes its receipts on the same bind.
type smppLoad struct {
	addr, systemID, password string
	window                   int
}

func runSMPPLoad(ctx context.Context, spec loadSpec, sl smppLoad) (*loadReport, error) {
	type outcome struct {
		submitted time.Time
		receipts  int
		stat      string
		at        time.Time
	}
	var mu sync.Mutex
	byID := map[string]*outcome{}
	early := map[string][]string{} // receipts that beat their submit_sm_resp

	c, err := esme.Dial(ctx, sl.addr, nil)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", sl.addr, err)
	}
	defer c.Close()
	c.SetAnswer(func(f smppwire.Frame) uint32 {
		m, err := esme.DecodeDeliver(f)
		if err != nil || m.ESMClass&0x04 == 0 {
			return 0
		}
		id := smppwire.TLVString(m.TLVs[smppwire.TagReceiptedMessageID])
		stat := ""
		if rt, err := smsgw.ParseReceiptText(string(m.ShortMessage)); err == nil {
			stat = rt.Stat
			if id == "" {
				id = rt.ID
			}
		}
		mu.Lock()
		if o, ok := byID[id]; ok {
			o.receipts++
			o.stat, o.at = stat, time.Now()
		} else {
			early[id] = append(early[id], stat)
		}
		mu.Unlock()
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

	rep := &loadReport{n: spec.n}
	var lat []time.Duration
	slots := make(chan struct{}, max(sl.window, 1))
	var wg sync.WaitGroup
	var tick *time.Ticker
	if spec.rate > 0 {
		tick = time.NewTicker(time.Duration(float64(time.Second) / spec.rate))
		defer tick.Stop()
	}
	start := time.Now()
submit:
	for i := range spec.n {
		if tick != nil {
			select {
			case <-tick.C:
			case <-ctx.Done():
				break submit
			}
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			break submit
		}
		raw := smppserver.EncodeMessage(smppwire.SubmitSM, 0, smppwire.Message{
			SourceTON: 5, Source: "LOADTEST", DestTON: 1, DestNPI: 1,
			Dest:               fmt.Sprintf("%s%07d", spec.to[1:], i+1),
			RegisteredDelivery: 1, ShortMessage: []byte(spec.text),
		})
		t0 := time.Now()
		ch, err := c.Start(raw)
		if err != nil {
			<-slots
			return rep, fmt.Errorf("submit_sm: %w", err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			f, ok := <-ch
			d := time.Since(t0)
			mu.Lock()
			defer mu.Unlock()
			id := esme.MessageID(f)
			if !ok || f.Status != 0 || id == "" {
				rep.failed++
				if rep.firstError == "" {
					rep.firstError = fmt.Sprintf("submit_sm_resp command_status 0x%08X", f.Status)
				}
				return
			}
			rep.accepted++
			lat = append(lat, d)
			o := &outcome{submitted: t0}
			if st, ok := early[id]; ok {
				o.receipts, o.stat, o.at = len(st), st[len(st)-1], time.Now()
				delete(early, id)
			}
			byID[id] = o
		}()
	}
	wg.Wait()
	rep.submitElapsed = time.Since(start)

	deadline := time.Now().Add(spec.wait)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		mu.Lock()
		done := true
		for _, o := range byID {
			if o.receipts == 0 {
				done = false
				break
			}
		}
		mu.Unlock()
		if done {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // let late duplicates show
	mu.Lock()
	defer mu.Unlock()
	var last time.Time
	for _, o := range byID {
		switch {
		case o.receipts == 0:
			rep.lost++
			continue
		case o.receipts > 1:
			rep.duplicated++
		}
		if o.stat == "DELIVRD" {
			rep.delivered++
		} else {
			rep.otherFinal++
		}
		rep.endToEnd = append(rep.endToEnd, o.at.Sub(o.submitted))
		if o.at.After(last) {
			last = o.at
		}
	}
	if !last.IsZero() {
		rep.deliverElapsed = last.Sub(start)
	}
	rep.acceptLatency = lat
	_ = c.Unbind(ctx)
	if rep.accepted == 0 && rep.failed > 0 {
		return rep, errors.New("no submit_sm accepted: " + rep.firstError)
	}
	return rep, nil
}
