package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/connectors/smppstatus"
	"github.com/smsgw/smsgw/segment"
)

// Bind modes of a connector.
const (
	// BindTransceiver submits and receives receipts on one connection each.
	BindTransceiver = "transceiver"
	// BindTransmitterReceiver holds a transmitter for submits and a receiver
	// for receipts and MO, as a pair, for SMSCs without transceiver binds.
	BindTransmitterReceiver = "transmitter+receiver"
	// BindTransmitter only submits: the SMSC sends no receipts on it.
	BindTransmitter = "transmitter"
)

// In-doubt policies: what to do with a submit_sm whose response never came.
const (
	// InDoubtFail fails the message rather than risk a duplicate on the handset.
	InDoubtFail = "fail"
	// InDoubtResubmit sends the part again.
	InDoubtResubmit = "resubmit"
)

// Partial failover policies: what to do when a connector that has already
// accepted some parts of a message (or may have: one in doubt) runs out of
// retries for the rest.
const (
	// PartialFailoverStay keeps the message on the connector, sending the
	// rest until validity ends: no part reaches the handset twice.
	PartialFailoverStay = "stay"
	// PartialFailoverResend sends the whole message again on the route's
	// next connector, recorded and counted as a resend: the handset may
	// get the parts the first connector delivered twice.
	PartialFailoverResend = "resend"
)

// Limits a connector may be configured within.
const (
	// MaxBinds is the most sessions one connector holds to its SMSC.
	MaxBinds = 64
	// MaxWindowSize is the largest window one session may have.
	MaxWindowSize = 1000
)

// Connector is an upstream SMSC we bind to. docs/connectors.md describes
// every field; zero values take the defaults named there.
type Connector struct {
	ID      string `yaml:"id"`
	Address string `yaml:"address"` // host:port

	// TLS wraps each connection in TLS, verified against the system roots,
	// or TLSCA when set. TLSServerName overrides the name checked (the host
	// of Address by default); TLSInsecureSkipVerify checks nothing.
	TLS                   bool   `yaml:"tls"`
	TLSServerName         string `yaml:"tlsServerName"`
	TLSInsecureSkipVerify bool   `yaml:"tlsInsecureSkipVerify"`
	TLSCA                 string `yaml:"tlsCA"` // PEM file of the certificates to trust

	SystemID   string `yaml:"systemId"`
	Password   string `yaml:"password"` // may be ${ENV}
	SystemType string `yaml:"systemType"`
	// BindMode is BindTransceiver (default), BindTransmitterReceiver or BindTransmitter.
	BindMode string `yaml:"bindMode"`
	// Binds is the number of sessions held (pairs, for transmitter+receiver); default 1.
	Binds int `yaml:"binds"`

	WindowSize int `yaml:"windowSize"` // per session; default 10
	// TPS is the connector's messages per second across every replica
	// (Temporal's task-queue rate limit), and each replica's submit_sm per
	// second. 0: no limit.
	TPS             float64       `yaml:"tps"`
	EnquireLink     time.Duration `yaml:"enquireLink"`     // default 30s
	ResponseTimeout time.Duration `yaml:"responseTimeout"` // default 10s
	RebindMin       time.Duration `yaml:"rebindMin"`       // default 1s
	RebindMax       time.Duration `yaml:"rebindMax"`       // default 30s

	// SourceTON and the others, when set, replace the TON and NPI the
	// gateway would choose from the address.
	SourceTON *uint8 `yaml:"sourceTon"`
	SourceNPI *uint8 `yaml:"sourceNpi"`
	DestTON   *uint8 `yaml:"destTon"`
	DestNPI   *uint8 `yaml:"destNpi"`
	// DataCoding maps an encoding (GSM7, IA5, LATIN1, BINARY8, UCS2) to the
	// data_coding value this SMSC wants for it, replacing the standard one.
	DataCoding map[string]uint8 `yaml:"dataCoding"`
	// Concat is how the parts of a long message are tied together for this
	// SMSC: "udh8" (the default: a UDH with an 8-bit reference), "udh16" or
	// "sar" (the sar_* TLVs instead of a UDH).
	Concat string `yaml:"concat"`

	// ReceiptIDFormat is the notation of IDs in receipts: "", "hex" or "decimal".
	ReceiptIDFormat string `yaml:"receiptIdFormat"`
	// SubmitIDFormat is the notation of message_id in submit_sm_resp; when
	// empty, "hex" if ReceiptIDFormat is set, else "".
	SubmitIDFormat string `yaml:"submitIdFormat"`
	// InDoubt says what to do when submit_sm got no response: InDoubtFail
	// (the default: never risk sending twice) or InDoubtResubmit.
	InDoubt string `yaml:"inDoubt"`
	// RerouteErrors are the refusals after which a message goes to the
	// route's next connector instead of failing: command_status names
	// (ESME_RINVDSTADR) or numbers (0x45, 69), and receipt error codes
	// ("err:034").
	RerouteErrors []string `yaml:"rerouteErrors"`
	// PartialFailover says what happens to a message part of which this
	// connector accepted when it runs out of retries for the rest:
	// PartialFailoverStay (the default) or PartialFailoverResend. A
	// re-route error always sends the whole message to the next connector.
	PartialFailover string `yaml:"partialFailover"`
	// MORedeliveryWindow is how long after a deliver_sm (MO) the gateway
	// refused or left unanswered an identical one on this connector is
	// taken for the same message offered again; default 2m.
	MORedeliveryWindow time.Duration `yaml:"moRedeliveryWindow"`
	// ReceiptWait is how long the send of a one-part message stays open
	// for its final receipt once the part is upstream: a receipt that comes
	// back to the same process meanwhile goes to the workflow with the
	// send's result, one workflow task and one signal fewer. Unset means
	// DefaultReceiptWait; 0s turns it off. At most MaxReceiptWait.
	ReceiptWait *time.Duration `yaml:"receiptWait"`

	line int
}

// Connector returns the connector with the given ID.
func (c *Config) Connector(id string) (Connector, bool) {
	for _, co := range c.Connectors {
		if co.ID == id {
			return co, true
		}
	}
	return Connector{}, false
}

// validateConnectors checks every connector and returns each problem found.
func (c *Config) validateConnectors() []error {
	var errs []error
	ids := map[string]bool{}
	for i, co := range c.Connectors {
		name := co.ID
		switch {
		case co.ID == "":
			name = fmt.Sprintf("connectors[%d]", i)
			errs = append(errs, lineError(co.line, "%s: id is required", name))
		case ids[co.ID]:
			errs = append(errs, lineError(co.line, "connectors[%d]: duplicate id %q", i, co.ID))
		case !validName(co.ID):
			errs = append(errs, lineError(co.line, "connector %q: id may hold only letters, digits, '-' and '_'", co.ID))
		}
		ids[co.ID] = true
		if co.ID != "" {
			name = strconv.Quote(co.ID)
		}
		for _, problem := range co.problems() {
			errs = append(errs, lineError(co.line, "connector %s: %s", name, problem))
		}
	}
	return errs
}

func lineError(line int, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if line > 0 {
		msg = fmt.Sprintf("line %d: %s", line, msg)
	}
	return errors.New(msg)
}

// problems lists what is wrong with one connector, each as a short sentence.
func (co Connector) problems() []string {
	var p []string
	bad := func(format string, args ...any) { p = append(p, fmt.Sprintf(format, args...)) }

	host, port, err := net.SplitHostPort(co.Address)
	if n, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || n < 1 || n > 65535 {
		bad("address must be host:port, got %q", co.Address)
	}
	if co.TLS {
		if co.TLSCA != "" {
			if _, err := loadCAs(co.TLSCA); err != nil {
				bad("tlsCA: %v", err)
			}
		}
	} else if co.TLSServerName != "" || co.TLSInsecureSkipVerify || co.TLSCA != "" {
		bad("tlsServerName, tlsInsecureSkipVerify and tlsCA apply only with tls: true")
	}

	if len(co.SystemID) > 15 {
		bad("systemId may have at most 15 characters")
	}
	if len(co.Password) > 8 {
		bad("password may have at most 8 characters (SMPP 3.4)")
	}
	if len(co.SystemType) > 12 {
		bad("systemType may have at most 12 characters")
	}
	switch co.BindMode {
	case "", BindTransceiver, BindTransmitterReceiver, BindTransmitter:
	default:
		bad("bindMode %q must be %s, %s or %s", co.BindMode, BindTransceiver, BindTransmitterReceiver, BindTransmitter)
	}
	if co.Binds < 0 || co.Binds > MaxBinds {
		bad("binds must be between 1 and %d (0 means 1)", MaxBinds)
	}
	if co.WindowSize < 0 || co.WindowSize > MaxWindowSize {
		bad("windowSize must be between 1 and %d (0 means 10)", MaxWindowSize)
	}
	if co.TPS < 0 {
		bad("tps must not be negative")
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"enquireLink", co.EnquireLink}, {"responseTimeout", co.ResponseTimeout}, {"rebindMin", co.RebindMin}, {"rebindMax", co.RebindMax}, {"moRedeliveryWindow", co.MORedeliveryWindow}} {
		if d.v < 0 {
			bad("%s must not be negative", d.name)
		}
	}
	if w := co.HoldForReceipt(); w < 0 || w > MaxReceiptWait {
		bad("receiptWait must be between 0s (off) and %s", MaxReceiptWait)
	}
	if lo, hi := orDefault(co.RebindMin, time.Second), orDefault(co.RebindMax, 30*time.Second); hi < lo {
		bad("rebindMax %s is below rebindMin %s", hi, lo)
	}

	for _, a := range []struct {
		name string
		v    *uint8
		ok   func(uint8) bool
	}{{"sourceTon", co.SourceTON, validTON}, {"sourceNpi", co.SourceNPI, validNPI}, {"destTon", co.DestTON, validTON}, {"destNpi", co.DestNPI, validNPI}} {
		if a.v != nil && !a.ok(*a.v) {
			bad("%s %d is not a TON (0–6) or NPI (0, 1, 3, 4, 6, 8, 9, 10, 14, 18) of SMPP 3.4", a.name, *a.v)
		}
	}
	for name := range co.DataCoding {
		if e, err := segment.ParseEncoding(name); err != nil || e == segment.Auto {
			bad("dataCoding key %q must be one of GSM7, IA5, LATIN1, BINARY8, UCS2", name)
		}
	}

	if _, err := segment.ParseConcatMode(co.Concat); err != nil {
		bad("concat must be udh8, udh16 or sar, got %q", co.Concat)
	}
	for field, f := range map[string]string{"receiptIdFormat": co.ReceiptIDFormat, "submitIdFormat": co.SubmitIDFormat} {
		if smsgw.CheckUpstreamIDFormat(f) != nil {
			bad("%s must be hex or decimal, got %q", field, f)
		}
	}
	switch co.InDoubt {
	case "", InDoubtFail, InDoubtResubmit:
	default:
		bad("inDoubt must be %s or %s, got %q", InDoubtFail, InDoubtResubmit, co.InDoubt)
	}
	switch co.PartialFailover {
	case "", PartialFailoverStay, PartialFailoverResend:
	default:
		bad("partialFailover must be %s or %s, got %q", PartialFailoverStay, PartialFailoverResend, co.PartialFailover)
	}
	for _, e := range co.RerouteErrors {
		if _, _, err := parseRerouteError(e); err != nil {
			bad("rerouteErrors: %v", err)
		}
	}
	return p
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

func validTON(v uint8) bool { return v <= 6 }

func validNPI(v uint8) bool {
	switch v {
	case 0, 1, 3, 4, 6, 8, 9, 10, 14, 18:
		return true
	}
	return false
}

// loadCAs reads a PEM file of certificates.
func loadCAs(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return pool, nil
}

// TLSConfig returns the TLS settings of the connection, or nil when the
// connector does not use TLS.
func (co Connector) TLSConfig() (*tls.Config, error) {
	if !co.TLS {
		return nil, nil
	}
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         co.TLSServerName,
		InsecureSkipVerify: co.TLSInsecureSkipVerify, //nolint:gosec // an operator's explicit choice, documented as unsafe
	}
	if cfg.ServerName == "" {
		if host, _, err := net.SplitHostPort(co.Address); err == nil {
			cfg.ServerName = host
		}
	}
	if co.TLSCA != "" {
		pool, err := loadCAs(co.TLSCA)
		if err != nil {
			return nil, fmt.Errorf("connector %q: tlsCA: %w", co.ID, err)
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

// DefaultReceiptWait and MaxReceiptWait bound Connector.ReceiptWait.
const (
	DefaultReceiptWait = time.Second
	MaxReceiptWait     = 5 * time.Second
)

// HoldForReceipt is ReceiptWait, or DefaultReceiptWait when unset.
func (co Connector) HoldForReceipt() time.Duration {
	if co.ReceiptWait == nil {
		return DefaultReceiptWait
	}
	return *co.ReceiptWait
}

// ResendOnFailover reports whether a message this connector accepted part
// of goes whole to the next connector when its retries run out.
func (co Connector) ResendOnFailover() bool { return co.PartialFailover == PartialFailoverResend }

// Resubmit reports whether a part whose submit_sm got no response is sent again.
func (co Connector) Resubmit() bool { return co.InDoubt == InDoubtResubmit }

// MapDataCoding returns the data_coding to send for a part the gateway
// encoded with the standard data_coding dc: the connector's own value for
// that encoding when dataCoding names one, else dc.
func (co Connector) MapDataCoding(dc byte) byte {
	for name, v := range co.DataCoding {
		if e, err := segment.ParseEncoding(name); err == nil && e != segment.Auto && e.DataCoding() == dc {
			return v
		}
	}
	return dc
}

// IsRerouteStatus reports whether a submit_sm refused with this
// command_status should go to the route's next connector.
func (co Connector) IsRerouteStatus(code uint32) bool {
	for _, e := range co.RerouteErrors {
		if status, isStatus, err := parseRerouteError(e); err == nil && isStatus && status == code {
			return true
		}
	}
	return false
}

// IsRerouteReceiptErr reports whether a receipt's err: code ("034", or
// "34") should send the message to the route's next connector. Codes are
// compared in the form smsgw.NormalizeReceiptErr gives them.
func (co Connector) IsRerouteReceiptErr(err string) bool {
	err = smsgw.NormalizeReceiptErr(err)
	return err != "" && slices.Contains(co.RerouteReceiptErrs(), err)
}

// RerouteReceiptErrs returns the receipt error codes of rerouteErrors, in
// the form smsgw.NormalizeReceiptErr gives them ("err:34" gives "034").
func (co Connector) RerouteReceiptErrs() []string {
	var codes []string
	for _, e := range co.RerouteErrors {
		if code, ok := strings.CutPrefix(strings.ToLower(strings.TrimSpace(e)), "err:"); ok && code != "" {
			codes = append(codes, smsgw.NormalizeReceiptErr(code))
		}
	}
	return codes
}

// parseRerouteError reads one rerouteErrors entry: a command_status name or
// number (isStatus true), or a receipt error code "err:NNN".
func parseRerouteError(e string) (status uint32, isStatus bool, err error) {
	s := strings.TrimSpace(e)
	if code, ok := strings.CutPrefix(strings.ToLower(s), "err:"); ok {
		if code == "" || strings.ContainsAny(code, " \t") {
			return 0, false, fmt.Errorf("%q: a receipt error code needs a value after err:", e)
		}
		return 0, false, nil
	}
	for _, entry := range smppstatus.Table {
		if strings.EqualFold(entry.Name, s) {
			return entry.Code, true, nil
		}
	}
	digits, base := s, 10
	if h, ok := strings.CutPrefix(strings.ToLower(s), "0x"); ok {
		digits, base = h, 16
	}
	n, perr := strconv.ParseUint(digits, base, 32)
	if perr != nil || s == "" {
		return 0, false, fmt.Errorf("%q is not a command_status name (ESME_RINVDSTADR), a number (0x0B, 11) or a receipt error (err:034)", e)
	}
	if n == 0 {
		return 0, false, fmt.Errorf("%q is ESME_ROK, which is not an error", e)
	}
	return uint32(n), true, nil
}
