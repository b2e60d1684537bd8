package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeCA writes a self-signed certificate as PEM and returns its path.
func writeCA(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "smsc.test"},
		DNSNames:     []string{"smsc.test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IsCA:         true,
		KeyUsage:     x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestConnectorEveryOption(t *testing.T) {
	ca := writeCA(t)
	env := func(k string) (string, bool) { return map[string]string{"UP_PW": "s3cret"}[k], k == "UP_PW" }
	cfg, err := Parse([]byte(`
connectors:
  - id: carrier
    address: smsc.example.net:3550
    tls: true
    tlsServerName: smsc.test
    tlsCA: `+ca+`
    systemId: smsgw
    password: ${UP_PW}
    systemType: VMA
    bindMode: transmitter+receiver
    binds: 3
    windowSize: 50
    tps: 200
    enquireLink: 15s
    responseTimeout: 5s
    rebindMin: 500ms
    rebindMax: 1m
    sourceTon: 0
    sourceNpi: 1
    destTon: 1
    destNpi: 1
    dataCoding: {GSM7: 0, UCS2: 8, LATIN1: 0x03}
    receiptIdFormat: decimal
    submitIdFormat: hex
    inDoubt: resubmit
    rerouteErrors: [ESME_RINVDSTADR, 0x45, 88, "err:034"]
`), env)
	if err != nil {
		t.Fatal(err)
	}
	co, ok := cfg.Connector("carrier")
	if !ok {
		t.Fatal("connector carrier not found")
	}
	if co.Password != "s3cret" || co.BindMode != BindTransmitterReceiver || co.Binds != 3 || co.WindowSize != 50 || co.TPS != 200 ||
		co.EnquireLink != 15*time.Second || co.ResponseTimeout != 5*time.Second || co.RebindMin != 500*time.Millisecond || co.RebindMax != time.Minute ||
		co.SourceTON == nil || *co.SourceTON != 0 || *co.SourceNPI != 1 || *co.DestTON != 1 || *co.DestNPI != 1 ||
		co.ReceiptIDFormat != "decimal" || co.SubmitIDFormat != "hex" || !co.Resubmit() || co.SystemType != "VMA" {
		t.Errorf("decoded %+v", co)
	}
	if got := co.RerouteErrors; len(got) != 4 || got[1] != "0x45" || got[2] != "88" {
		t.Errorf("rerouteErrors decoded as %q", got)
	}
	tc, err := co.TLSConfig()
	if err != nil || tc == nil || tc.ServerName != "smsc.test" || tc.RootCAs == nil || tc.InsecureSkipVerify {
		t.Errorf("TLSConfig() = %+v, %v", tc, err)
	}
}

func TestConnectorDefaults(t *testing.T) {
	cfg, err := Parse([]byte("connectors:\n  - {id: sim, address: \"127.0.0.1:2776\", systemId: gw}\n"), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	co := cfg.Connectors[0]
	if tc, err := co.TLSConfig(); tc != nil || err != nil {
		t.Errorf("TLSConfig() without tls = %v, %v", tc, err)
	}
	if co.Resubmit() || co.IsRerouteStatus(0x0B) || co.IsRerouteReceiptErr("034") || co.MapDataCoding(8) != 8 {
		t.Error("a connector without options changes nothing")
	}
	if w := co.HoldForReceipt(); w != DefaultReceiptWait {
		t.Errorf("HoldForReceipt() = %s, want the default %s", w, DefaultReceiptWait)
	}
	off, err := Parse([]byte("connectors:\n  - {id: sim, address: \"127.0.0.1:2776\", systemId: gw, receiptWait: 0s}\n"), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if w := off.Connectors[0].HoldForReceipt(); w != 0 {
		t.Errorf("receiptWait: 0s gives HoldForReceipt() = %s, want 0 (off)", w)
	}
	co.TLS = true
	if tc, err := co.TLSConfig(); err != nil || tc.ServerName != "127.0.0.1" || tc.MinVersion == 0 {
		t.Errorf("TLSConfig() = %+v, %v; want the host of the address as server name", tc, err)
	}
}

func TestConnectorProblems(t *testing.T) {
	for _, tt := range []struct {
		name, yaml, want string
	}{
		{"no port", `address: smsc.example.net`, `address must be host:port, got "smsc.example.net"`},
		{"bad port", `address: "h:99999"`, "address must be host:port"},
		{"no host", `address: ":2775"`, "address must be host:port"},
		{"tls options without tls", `tlsServerName: x`, "apply only with tls: true"},
		{"missing CA", `{tls: true, tlsCA: /nonexistent/ca.pem}`, "tlsCA: open /nonexistent/ca.pem"},
		{"long system id", `systemId: abcdefghijklmnop`, "systemId may have at most 15"},
		{"long password", `password: abcdefghi`, "password may have at most 8"},
		{"long system type", `systemType: abcdefghijklm`, "systemType may have at most 12"},
		{"bind mode", `bindMode: both`, `bindMode "both" must be transceiver, transmitter+receiver or transmitter`},
		{"binds", `binds: 65`, "binds must be between 1 and 64"},
		{"window", `windowSize: -1`, "windowSize must be between 1 and 1000"},
		{"tps", `tps: -5`, "tps must not be negative"},
		{"negative duration", `enquireLink: -1s`, "enquireLink must not be negative"},
		{"negative receipt wait", `receiptWait: -1s`, "receiptWait must be between 0s (off) and 5s"},
		{"long receipt wait", `receiptWait: 6s`, "receiptWait must be between 0s (off) and 5s"},
		{"rebind order", `{rebindMin: 10s, rebindMax: 2s}`, "rebindMax 2s is below rebindMin 10s"},
		{"rebind below default min", `rebindMax: 500ms`, "rebindMax 500ms is below rebindMin 1s"},
		{"ton", `sourceTon: 7`, "sourceTon 7 is not a TON"},
		{"npi", `destNpi: 2`, "destNpi 2 is not a TON (0–6) or NPI"},
		{"data coding key", `dataCoding: {UTF8: 4}`, `dataCoding key "UTF8" must be one of`},
		{"data coding auto", `dataCoding: {AUTO: 0}`, `dataCoding key "AUTO"`},
		{"receipt id format", `receiptIdFormat: octal`, `receiptIdFormat must be hex or decimal, got "octal"`},
		{"submit id format", `submitIdFormat: base64`, `submitIdFormat must be hex or decimal`},
		{"in doubt", `inDoubt: retry`, `inDoubt must be fail or resubmit, got "retry"`},
		{"reroute name", `rerouteErrors: [ESME_NOPE]`, `"ESME_NOPE" is not a command_status name`},
		{"reroute ok", `rerouteErrors: [0]`, "is ESME_ROK"},
		{"reroute empty err", `rerouteErrors: ["err:"]`, "needs a value after err:"},
		{"reroute hex", `rerouteErrors: [0xZZ]`, `"0xZZ" is not a command_status`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fields := tt.yaml
			if !strings.HasPrefix(fields, "{") {
				fields = "{" + fields + "}"
			}
			// The connector's own fields come last so that they win.
			base := "{id: up, address: \"127.0.0.1:2775\"}"
			doc := "customers: []\nconnectors:\n  - " + mergeFlow(base, fields) + "\n"
			_, err := Parse([]byte(doc), noEnv)
			if err == nil {
				t.Fatalf("accepted %s", doc)
			}
			if !strings.Contains(err.Error(), "line 3: connector \"up\": ") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want line 3 and %q", err, tt.want)
			}
		})
	}
}

// mergeFlow joins two YAML flow mappings; keys of b replace those of a.
func mergeFlow(a, b string) string {
	inner := func(s string) string { return strings.TrimSuffix(strings.TrimPrefix(s, "{"), "}") }
	keys := map[string]bool{}
	var out []string
	for _, kv := range splitFlow(inner(b)) {
		keys[strings.TrimSpace(strings.SplitN(kv, ":", 2)[0])] = true
		out = append(out, kv)
	}
	for _, kv := range splitFlow(inner(a)) {
		if !keys[strings.TrimSpace(strings.SplitN(kv, ":", 2)[0])] {
			out = append(out, kv)
		}
	}
	return "{" + strings.Join(out, ", ") + "}"
}

// splitFlow splits "k: v, k2: [a, b]" at the commas outside brackets.
func splitFlow(s string) []string {
	var parts []string
	depth, start := 0, 0
	for i, r := range s {
		switch r {
		case '[', '{':
			depth++
		case ']', '}':
			depth--
		case ',':
			if depth == 0 {
				parts = append(parts, strings.TrimSpace(s[start:i]))
				start = i + 1
			}
		}
	}
	return append(parts, strings.TrimSpace(s[start:]))
}

func TestConnectorIDs(t *testing.T) {
	_, err := Parse([]byte(`connectors:
  - {address: "h:1"}
  - {id: a, address: "h:1"}
  - {id: a, address: "h:1"}
  - {id: "a b", address: "h:1"}
`), noEnv)
	for _, want := range []string{
		"line 2: connectors[0]: id is required",
		"line 4: connectors[2]: duplicate id \"a\"",
		"line 5: connector \"a b\": id may hold only",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
}

func TestRerouteErrors(t *testing.T) {
	co := Connector{RerouteErrors: []string{"ESME_RINVDSTADR", "esme_rinvsrcadr", "0x45", "88", "err:034", "ERR:abc"}}
	for code, want := range map[uint32]bool{
		0x0B: true,  // ESME_RINVDSTADR by name
		0x0A: true,  // by name, any case
		0x45: true,  // ESME_RSUBMITFAIL by hex
		0x58: true,  // ESME_RTHROTTLED by decimal 88
		0x22: false, // 34 is a receipt code here, not a command_status
		0x08: false,
	} {
		if got := co.IsRerouteStatus(code); got != want {
			t.Errorf("IsRerouteStatus(0x%X) = %v, want %v", code, got, want)
		}
	}
	for code, want := range map[string]bool{"034": true, "34": true, " 034 ": true, "0034": true, "035": false, "": false, "ABC": true, "abd": false} {
		if got := co.IsRerouteReceiptErr(code); got != want {
			t.Errorf("IsRerouteReceiptErr(%q) = %v, want %v", code, got, want)
		}
	}
	if got := co.RerouteReceiptErrs(); strings.Join(got, ",") != "034,abc" {
		t.Errorf("RerouteReceiptErrs() = %q", got)
	}
}

func TestMapDataCoding(t *testing.T) {
	co := Connector{DataCoding: map[string]uint8{"LATIN1": 0x00, "UCS2": 0x18, "gsm7": 0xF0}}
	for in, want := range map[byte]byte{0x03: 0x00, 0x08: 0x18, 0x00: 0xF0, 0x04: 0x04, 0x01: 0x01, 0x11: 0x11} {
		if got := co.MapDataCoding(in); got != want {
			t.Errorf("MapDataCoding(0x%02X) = 0x%02X, want 0x%02X", in, got, want)
		}
	}
}
