package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/emersion/go-smtp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	grpcstatus "google.golang.org/grpc/status"

	"github.com/smsgw/smsgw/connectors/smppserver"
	"github.com/smsgw/smsgw/connectors/smppserver/esme"
	"github.com/smsgw/smsgw/connectors/smppstatus"
	"github.com/smsgw/smsgw/connectors/smpptest"
	"github.com/smsgw/smsgw/connectors/smppwire"
	"github.com/smsgw/smsgw/notify/webhook"
	smsgwv1 "github.com/smsgw/smsgw/proto/smsgw/v1"
)

// The soak's customer: it submits over REST, gRPC, SMPP and email at a
// fixed rate, each message to a destination of its own, and keeps what it
// was told; it receives webhooks and SMPP deliver_sm and keeps those too.
// The SMSC simulators offer MO to its number. The checker reads it all.

// Soak customer credentials, in the configuration the soak writes.
const (
	soakAPIKey     = "soak-key"
	soakSystemID   = "soak"
	soakPassword   = "soak1234"
	soakSecret     = "soak-webhook-secret"
	soakMailFrom   = "soak@customer.test"
	soakMailDomain = "sms.soak"
	soakNumber     = "61400000001" // MO go to this number of the customer's
	soakDestPrefix = "+6149"       // destinations: the prefix and a 7-digit counter
	submitTimeout  = 20 * time.Second
	longTextEvery  = 5 // every 5th message takes two parts
	soakSender     = "SOAK"
)

// Outcomes of a submission, as the customer saw them.
const (
	outcomeAccepted = "accepted" // 202, submit_sm_resp ESME_ROK, SMTP 250
	outcomeRefused  = "refused"  // 429/503, ESME_RTHROTTLED and the like, SMTP 451: must start nothing
	outcomeUnknown  = "unknown"  // no answer (timeout, connection lost): may or may not exist
	outcomeRejected = "rejected" // refused for what it is (4xx): must start nothing either
	outcomeUnsent   = "unsent"   // never reached the gateway (no connection to the replica)
)

// submission is one attempt to submit a message.
type submission struct {
	N       int
	Entry   string
	Replica string
	Dest    string
	Parts   int
	At      time.Time
	Outcome string
	ID      string
	Detail  string
}

// moOffer is one MO the simulators offered to the customer's number.
type moOffer struct {
	N       int
	Text    string
	Carrier string
	At      time.Time
	Offers  int    // deliver_sm offered, the refused ones included
	Taken   bool   // one was answered ESME_ROK
	Detail  string // the last refusal
}

// ledger is everything the customer did.
type ledger struct {
	mu   sync.Mutex
	subs []*submission
	mos  []*moOffer
}

func (l *ledger) add(s *submission) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.subs = append(l.subs, s)
}

func (l *ledger) submissions() []submission {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]submission, len(l.subs))
	for i, s := range l.subs {
		out[i] = *s
	}
	return out
}

// note is one webhook or deliver_sm the customer received about a message.
type note struct {
	Status string
	Seq    int
}

// customer is the customer's receiving side.
type customer struct {
	mu        sync.Mutex
	webhooks  map[string][]note // status notifications by message ID
	inbound   map[string][]string
	deliverSM map[string][]string // receipts on the receiver binds: stat by message ID
	badSigs   int
	refused   int // webhook calls answered 500 (the endpoint-down fault)

	failUntil    time.Time // answer 500 until then
	receiversOff time.Time // receiver binds stay away until then
}

func newCustomer() *customer {
	return &customer{webhooks: map[string][]note{}, inbound: map[string][]string{}, deliverSM: map[string][]string{}}
}

// serveWebhooks serves the customer's webhook endpoint on ln.
func (c *customer) serveWebhooks(ctx context.Context, ln net.Listener) {
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		c.mu.Lock()
		defer c.mu.Unlock()
		if time.Now().Before(c.failUntil) {
			c.refused++
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		if webhook.Verify(soakSecret, r.Header.Get(webhook.SignatureHeader), raw, time.Now(), 5*time.Minute) != nil {
			c.badSigs++
		}
		var body struct {
			MessageID string `json:"messageId"`
			Status    string `json:"status"`
			Seq       int    `json:"seq"`
			ID        string `json:"id"`
			Text      string `json:"text"`
		}
		_ = json.Unmarshal(raw, &body)
		if r.Header.Get(webhook.EventHeader) == "inbound" {
			c.inbound[body.Text] = append(c.inbound[body.Text], body.ID)
		} else {
			c.webhooks[body.MessageID] = append(c.webhooks[body.MessageID], note{Status: body.Status, Seq: body.Seq})
		}
		w.WriteHeader(http.StatusNoContent)
	})}
	go func() { <-ctx.Done(); srv.Close() }()
	_ = srv.Serve(ln)
}

// failWebhooksFor makes the endpoint answer 500 for d.
func (c *customer) failWebhooksFor(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failUntil = time.Now().Add(d)
}

// receiversAwayFor takes the receiver binds away for d.
func (c *customer) receiversAwayFor(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.receiversOff = time.Now().Add(d)
}

func (c *customer) receiversAway() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Before(c.receiversOff)
}

// receiptText finds the message ID and state of a deliver_sm receipt.
var receiptText = regexp.MustCompile(`id:(\S+) .*stat:(\S+)`)

// keepBound holds one SMPP bind to addr, binding again whenever it drops
// (its replica killed or restarted), until ctx ends. A receiver records
// the receipts it gets, and goes away while receiversAway says so.
func (c *customer) keepBound(ctx context.Context, addr string, cmd uint32, bound func(*esme.Client)) {
	for ctx.Err() == nil {
		if cmd == smppwire.BindReceiver && c.receiversAway() {
			time.Sleep(500 * time.Millisecond)
			continue
		}
		cl, err := c.bind(ctx, addr, cmd)
		if err != nil {
			time.Sleep(time.Second)
			continue
		}
		bound(cl)
		// The bind holds until its session ends or the soak does; a
		// receiver also leaves, unbinding, when it is sent away.
		for ended := false; !ended; {
			select {
			case <-cl.Done():
				ended = true
			case <-ctx.Done():
				ended = true
			case <-time.After(250 * time.Millisecond):
				if cmd == smppwire.BindReceiver && c.receiversAway() {
					uctx, cancel := context.WithTimeout(ctx, 2*time.Second)
					_ = cl.Unbind(uctx)
					cancel()
					ended = true
				}
			}
		}
		bound(nil)
		cl.Close()
		time.Sleep(500 * time.Millisecond)
	}
}

func (c *customer) bind(ctx context.Context, addr string, cmd uint32) (*esme.Client, error) {
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	cl, err := esme.Dial(dctx, addr, nil)
	if err != nil {
		return nil, err
	}
	if cmd == smppwire.BindReceiver {
		cl.SetAnswer(func(f smppwire.Frame) uint32 {
			m, err := esme.DecodeDeliver(f)
			if err != nil || m.ESMClass&0x04 == 0 {
				return 0
			}
			id := smppwire.TLVString(m.TLVs[smppwire.TagReceiptedMessageID])
			stat := ""
			if g := receiptText.FindStringSubmatch(string(m.ShortMessage)); g != nil {
				stat = g[2]
				if id == "" {
					id = g[1]
				}
			}
			c.mu.Lock()
			c.deliverSM[id] = append(c.deliverSM[id], stat)
			c.mu.Unlock()
			return 0
		})
	}
	resp, err := cl.Bind(dctx, cmd, soakSystemID, soakPassword)
	if err != nil || resp.Status != 0 {
		cl.Close()
		return nil, fmt.Errorf("bind to %s: %v (status 0x%08X)", addr, err, resp.Status)
	}
	return cl, nil
}

// loader submits the customer's messages.
type loader struct {
	st     *stack
	ledger *ledger

	grpcConns map[string]*grpc.ClientConn

	mu    sync.Mutex
	smpp  map[string]*esme.Client // transmitter binds by replica address; nil while down
	count int
}

// setTransmitter notes the transmitter bound to a replica (nil: none).
func (l *loader) setTransmitter(addr string) func(*esme.Client) {
	return func(c *esme.Client) {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.smpp[addr] = c
	}
}

// next numbers the next submission and picks its replica of role.
func (l *loader) next(role string) (int, *role) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.count++
	rs := l.st.roles[role]
	return l.count, rs[l.count%len(rs)]
}

// soakText is the text of message n: one part, or two for every
// longTextEvery-th.
func soakText(n int) (string, int) {
	t := fmt.Sprintf("soak message %d", n)
	if n%longTextEvery == 0 {
		return t + " " + strings.Repeat("x", 200), 2
	}
	return t, 1
}

// submit submits message n over entry and records how it was answered.
func (l *loader) submit(ctx context.Context, entry string) {
	roleName := map[string]string{"rest": "api", "grpc": "api", "smpp": "smpp", "email": "email"}[entry]
	n, r := l.next(roleName)
	text, parts := soakText(n)
	s := &submission{N: n, Entry: entry, Replica: r.name, Dest: fmt.Sprintf("%s%07d", soakDestPrefix, n), Parts: parts, At: time.Now().UTC()}
	ctx, cancel := context.WithTimeout(ctx, submitTimeout)
	defer cancel()
	switch entry {
	case "rest":
		s.Outcome, s.ID, s.Detail = l.submitREST(ctx, r.http, s.Dest, text)
	case "grpc":
		s.Outcome, s.ID, s.Detail = l.submitGRPC(ctx, r.grpc, s.Dest, text)
	case "smpp":
		s.Outcome, s.ID, s.Detail = l.submitSMPP(ctx, r.smpp, s.Dest, text)
	case "email":
		s.Outcome, s.ID, s.Detail = submitEmail(ctx, r.smtp, s.Dest, text)
	}
	l.ledger.add(s)
}

func (l *loader) submitREST(ctx context.Context, addr, dest, text string) (outcome, id, detail string) {
	body, _ := json.Marshal(map[string]string{"from": soakSender, "to": dest, "text": text})
	req, _ := http.NewRequestWithContext(ctx, "POST", "http://"+addr+"/v1/messages", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+soakAPIKey)
	resp, err := http.DefaultClient.Do(req)
	if errors.Is(err, syscall.ECONNREFUSED) {
		return outcomeUnsent, "", err.Error()
	}
	if err != nil {
		return outcomeUnknown, "", err.Error()
	}
	defer resp.Body.Close()
	var out struct {
		ID string `json:"id"`
	}
	raw, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(raw, &out)
	switch {
	case resp.StatusCode == http.StatusAccepted && out.ID != "":
		return outcomeAccepted, out.ID, ""
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable:
		return outcomeRefused, "", fmt.Sprintf("HTTP %d", resp.StatusCode)
	case resp.StatusCode >= 500:
		return outcomeUnknown, "", fmt.Sprintf("HTTP %d %s", resp.StatusCode, bytes.TrimSpace(raw))
	}
	return outcomeRejected, "", fmt.Sprintf("HTTP %d %s", resp.StatusCode, bytes.TrimSpace(raw))
}

func (l *loader) submitGRPC(ctx context.Context, addr, dest, text string) (outcome, id, detail string) {
	l.mu.Lock()
	conn := l.grpcConns[addr]
	if conn == nil {
		var err error
		if conn, err = grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials())); err != nil {
			l.mu.Unlock()
			return outcomeUnknown, "", err.Error()
		}
		l.grpcConns[addr] = conn
	}
	l.mu.Unlock()
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+soakAPIKey)
	resp, err := smsgwv1.NewMessageServiceClient(conn).SubmitMessage(ctx, &smsgwv1.SubmitMessageRequest{From: soakSender, To: dest, Text: text})
	switch code := grpcstatus.Code(err); {
	case err == nil:
		return outcomeAccepted, resp.GetId(), ""
	case code == codes.Unavailable && strings.Contains(err.Error(), "connection refused"):
		return outcomeUnsent, "", err.Error()
	case code == codes.ResourceExhausted || code == codes.Unavailable && strings.Contains(err.Error(), " is unavailable"):
		// Unavailable from the gateway itself (a store or Temporal down);
		// a connection lost is Unavailable too, and then unknown.
		return outcomeRefused, "", err.Error()
	case code == codes.InvalidArgument || code == codes.Unauthenticated || code == codes.AlreadyExists:
		return outcomeRejected, "", err.Error()
	}
	return outcomeUnknown, "", err.Error()
}

func (l *loader) submitSMPP(ctx context.Context, addr, dest, text string) (outcome, id, detail string) {
	l.mu.Lock()
	cl := l.smpp[addr]
	l.mu.Unlock()
	if cl == nil {
		return outcomeUnsent, "", "not bound to " + addr
	}
	raw := smppserver.EncodeMessage(smppwire.SubmitSM, 0, smppwire.Message{
		SourceTON: 5, Source: soakSender, DestTON: 1, DestNPI: 1, Dest: strings.TrimPrefix(dest, "+"),
		RegisteredDelivery: 1, ShortMessage: []byte(text),
	})
	ch, err := cl.Start(raw)
	if err != nil {
		return outcomeUnsent, "", "submit_sm not written: " + err.Error()
	}
	select {
	case f, ok := <-ch:
		switch {
		case !ok:
			return outcomeUnknown, "", "connection ended before submit_sm_resp"
		case f.Status == 0 && esme.MessageID(f) != "":
			return outcomeAccepted, esme.MessageID(f), ""
		}
		return outcomeRefused, "", smppstatus.Name(f.Status)
	case <-ctx.Done():
		return outcomeUnknown, "", "no submit_sm_resp in time"
	}
}

// acceptedAs finds the message ID in the gateway's answer to DATA.
var acceptedAs = regexp.MustCompile(`accepted as message (\w+)`)

func submitEmail(ctx context.Context, addr, dest, text string) (outcome, id, detail string) {
	d := net.Dialer{}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return outcomeUnsent, "", "not connected: " + err.Error()
	}
	if deadline, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(deadline)
	}
	c := smtp.NewClient(conn)
	defer c.Close()
	refusal := func(stage string, err error) (string, string, string) {
		var se *smtp.SMTPError
		if errors.As(err, &se) && (se.Code == 451 || se.Code == 421 || se.Code/100 == 5) {
			if se.Code/100 == 5 {
				return outcomeRejected, "", fmt.Sprintf("%s: %d %s", stage, se.Code, se.Message)
			}
			return outcomeRefused, "", fmt.Sprintf("%s: %d %s", stage, se.Code, se.Message)
		}
		return outcomeUnknown, "", fmt.Sprintf("%s: %v", stage, err)
	}
	if err := c.Mail(soakMailFrom, nil); err != nil {
		o, _, d := refusal("MAIL", err)
		if o == outcomeUnknown {
			o = outcomeRefused // nothing was handed over yet
		}
		return o, "", d
	}
	if err := c.Rcpt(strings.TrimPrefix(dest, "+")+"@"+soakMailDomain, nil); err != nil {
		o, _, d := refusal("RCPT", err)
		if o == outcomeUnknown {
			o = outcomeRefused
		}
		return o, "", d
	}
	w, err := c.Data()
	if err != nil {
		return refusal("DATA", err)
	}
	msg := "From: " + soakMailFrom + "\r\nSubject: soak\r\n\r\n" + text + "\r\n"
	if _, err := io.WriteString(w, msg); err != nil {
		return refusal("DATA", err)
	}
	resp, err := w.CloseWithResponse()
	if err != nil {
		return refusal("end of DATA", err)
	}
	if m := acceptedAs.FindStringSubmatch(resp.StatusText); m != nil {
		return outcomeAccepted, m[1], ""
	}
	return outcomeUnknown, "", "answer names no message: " + resp.StatusText
}

// offerMO has a simulator offer MO n to the customer's number, and offer
// it again while the gateway refuses it, as an SMSC does.
func (l *loader) offerMO(ctx context.Context, n int, carrier string, sim *smpptest.SMSC) {
	mo := &moOffer{N: n, Text: fmt.Sprintf("soak mo %d", n), Carrier: carrier, At: time.Now().UTC()}
	l.ledger.mu.Lock()
	l.ledger.mos = append(l.ledger.mos, mo)
	l.ledger.mu.Unlock()
	from := fmt.Sprintf("6141%07d", n)
	for attempt := 0; attempt < 30 && ctx.Err() == nil; attempt++ {
		ictx, cancel := context.WithTimeout(ctx, 15*time.Second)
		err := sim.InjectMO(ictx, from, soakNumber, 0, 0, []byte(mo.Text))
		cancel()
		l.ledger.mu.Lock()
		mo.Offers++
		if err == nil {
			mo.Taken = true
		} else {
			mo.Detail = err.Error()
		}
		l.ledger.mu.Unlock()
		if err == nil {
			return
		}
		if sleepCtx(ctx, 2*time.Second) != nil {
			return
		}
	}
}
