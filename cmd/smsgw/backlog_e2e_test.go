package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	grpcstatus "google.golang.org/grpc/status"

	"github.com/smsgw/smsgw/connectors/smppstatus"
	"github.com/smsgw/smsgw/connectors/smpptest"
	"github.com/smsgw/smsgw/connectors/smppwire"
	smsgwv1 "github.com/smsgw/smsgw/proto/smsgw/v1"
)

// TestEndToEndBacklogBound gives a customer a backlog of 3 and a route
// whose only connector has no SMSC yet, so its messages stay accepted and
// unsent. Three are accepted; the fourth is refused on every entry point
// (REST 429 with Retry-After, gRPC RESOURCE_EXHAUSTED with RetryInfo, SMPP
// ESME_RTHROTTLED, SMTP 451), and none of the refused ever reaches the
// SMSC. Once the SMSC comes up the three go out and the customer is
// accepted again.
func TestEndToEndBacklogBound(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	// The SMSC's address is held from the start (a closed port may be taken
	// by another socket meanwhile, even by a connector dialling itself), but
	// it hangs up on every connection until the SMSC opens.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gate := &hangUpListener{Listener: ln}
	dead := ln.Addr().String()
	sim := smpptest.New(smpptest.Config{SystemID: "gw", Password: "pw"})
	g := startGatewayWith(t, "", gatewayExtras{
		customers: `  - id: capped
    apiKeys: ["plain:capped-key"]
    maxBacklog: 3
    smpp: {systemId: capped, password: "plain:capped-pw"}
    emailIngress: {username: capped-mail, password: "plain:mail-pw"}
`,
		connectors: fmt.Sprintf("  - {id: late, address: %q, systemId: gw, password: pw, rebindMin: 100ms, rebindMax: 300ms}\n", dead),
		routes:     `  - {name: denmark, prefixes: ["+45"], connectors: [late]}` + "\n",
		sections:   "email: {domains: [sms.test]}\n",
		flags:      []string{"-smtp-insecure-auth"}, // AUTH over loopback without STARTTLS
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	go func() { _ = sim.Serve(ctx, gate) }()

	submit := func(n int) (int, map[string]any, http.Header) {
		req, _ := http.NewRequestWithContext(ctx, "POST", g.base+"/v1/messages",
			strings.NewReader(fmt.Sprintf(`{"from":"CAPPED","to":"+4520000%03d","text":"backlog %d"}`, n, n)))
		req.Header.Set("Authorization", "Bearer capped-key")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, map[string]any{"raw": string(raw)}, resp.Header
	}
	for i := 1; i <= 3; i++ {
		if code, out, _ := submit(i); code != http.StatusAccepted {
			t.Fatalf("submission %d within the bound: HTTP %d %v", i, code, out)
		}
	}

	// REST: 429 with a reason and Retry-After.
	code, out, h := submit(4)
	if code != http.StatusTooManyRequests || !strings.Contains(fmt.Sprint(out), "backlog") {
		t.Fatalf("submission over the bound: HTTP %d %v, want 429 naming the backlog", code, out)
	}
	if secs, err := strconv.Atoi(h.Get("Retry-After")); err != nil || secs < 1 {
		t.Errorf("Retry-After = %q, want whole seconds >= 1", h.Get("Retry-After"))
	}

	// gRPC: RESOURCE_EXHAUSTED with RetryInfo.
	conn, err := grpc.NewClient(g.grpc, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, err = smsgwv1.NewMessageServiceClient(conn).SubmitMessage(
		metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer capped-key"),
		&smsgwv1.SubmitMessageRequest{From: "CAPPED", To: "+4520000005", Text: "backlog 5"})
	st, _ := grpcstatus.FromError(err)
	if st.Code() != codes.ResourceExhausted {
		t.Fatalf("gRPC over the bound: %v, want RESOURCE_EXHAUSTED", err)
	}
	var retry *errdetails.RetryInfo
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			retry = ri
		}
	}
	if retry == nil || retry.GetRetryDelay().AsDuration() <= 0 {
		t.Errorf("gRPC refusal details %v, want a RetryInfo with a delay", st.Details())
	}

	// SMPP: ESME_RTHROTTLED.
	esmeClient := smppBindAs(t, ctx, g, smppwire.BindTransmitter, "capped", "capped-pw")
	smppStatus, _, err := esmeClient.Submit(ctx, smppwire.Message{
		SourceTON: 5, Source: "CAPPED", DestTON: 1, DestNPI: 1, Dest: "4520000006", ShortMessage: []byte("backlog 6"),
	})
	if err != nil || smppStatus != smppstatus.ESME_RTHROTTLED {
		t.Fatalf("submit_sm over the bound: status 0x%08X %v, want ESME_RTHROTTLED", smppStatus, err)
	}

	// SMTP: 451, a temporary refusal the sending server retries.
	if code := mailCode(t, g.smtp, "capped-mail", "mail-pw", "+4520000007@sms.test", "backlog 7"); code != 451 {
		t.Fatalf("mail over the bound: SMTP %d, want 451", code)
	}

	// The SMSC comes up: the three accepted go out, the refused never do.
	gate.open.Store(true)
	if err := sim.WaitSubmits(ctx, 3); err != nil {
		t.Fatal(err)
	}
	for {
		code, out, _ := submit(8)
		if code == http.StatusAccepted {
			break
		}
		if code != http.StatusTooManyRequests || ctx.Err() != nil {
			t.Fatalf("submission once the backlog drained: HTTP %d %v", code, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err := sim.WaitSubmits(ctx, 4); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // anything else would arrive now
	for _, s := range sim.Submits() {
		switch text := string(s.ShortMessage); text {
		case "backlog 1", "backlog 2", "backlog 3", "backlog 8":
		default:
			t.Errorf("the SMSC got %q, refused at submission", text)
		}
	}
	if n := len(sim.Submits()); n != 4 {
		t.Errorf("the SMSC got %d submit_sm, want 4", n)
	}
}

// hangUpListener closes every connection it accepts until open is set.
type hangUpListener struct {
	net.Listener
	open atomic.Bool
}

func (l *hangUpListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil || l.open.Load() {
			return c, err
		}
		c.Close()
	}
}

// mailCode sends one mail and returns the SMTP code its data was answered
// with (250 when accepted).
func mailCode(t *testing.T, addr, user, pass, rcpt, text string) int {
	t.Helper()
	_, err := mailExchange(t, addr, user, pass, "ops@capped.test", []string{rcpt}, "From: ops@capped.test\nSubject: x\n\n"+text+"\n")
	var se *smtp.SMTPError
	switch {
	case err == nil:
		return 250
	case errors.As(err, &se):
		return se.Code
	default:
		t.Fatalf("DATA: %v", err)
		return 0
	}
}
