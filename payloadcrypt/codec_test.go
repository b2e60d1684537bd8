package payloadcrypt

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

func newKey(t testing.TB, id string) Key {
	t.Helper()
	k := Key{ID: id, Secret: make([]byte, KeySize)}
	if _, err := rand.Read(k.Secret); err != nil {
		t.Fatal(err)
	}
	return k
}

func ring(t testing.TB, active string, keys ...Key) *Keyring {
	t.Helper()
	r, err := NewKeyring(keys, active)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// message is a payload as the gateway writes it: a message workflow's input.
func message(t testing.TB) *commonpb.Payload {
	t.Helper()
	p, err := converter.GetDefaultDataConverter().ToPayload(map[string]any{
		"Message": map[string]any{"ID": "0190f3a2b4c5d6e7f8091a2b3c4d5e6f", "CustomerID": "acme", "From": "ACME",
			"To": "+61412345678", "Text": "Your one-time code is 493817. It expires in 10 minutes.", "Validity": 172800000000000},
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSealAndOpen(t *testing.T) {
	a := newKey(t, "a")
	c := Codec{Keys: ring(t, "", a)}
	plain := message(t)
	sealed, err := c.Encode([]*commonpb.Payload{plain})
	if err != nil {
		t.Fatal(err)
	}
	s := sealed[0]
	if string(s.Metadata[MetadataEncoding]) != EncodingSealed || string(s.Metadata[MetadataKeyID]) != "a" {
		t.Fatalf("metadata %v", s.Metadata)
	}
	if bytes.Contains(s.Data, []byte("493817")) || bytes.Contains(s.Data, []byte("61412345678")) || bytes.Contains(s.Data, []byte("json/plain")) {
		t.Fatal("the sealed payload shows the text, the number or the inner encoding")
	}
	again, _ := c.Encode([]*commonpb.Payload{plain})
	if bytes.Equal(again[0].Data, s.Data) {
		t.Fatal("two sealings of one payload are equal: the nonce is not fresh")
	}
	opened, err := c.Decode(sealed)
	if err != nil {
		t.Fatal(err)
	}
	if string(opened[0].Data) != string(plain.Data) || string(opened[0].Metadata["encoding"]) != "json/plain" {
		t.Fatalf("opened %v, want %v", opened[0], plain)
	}
}

func TestClearPayloadsPassThrough(t *testing.T) {
	c := Codec{Keys: ring(t, "", newKey(t, "a"))}
	plain := message(t)
	out, err := c.Decode([]*commonpb.Payload{plain})
	if err != nil || out[0] != plain {
		t.Fatalf("a payload written before encryption: %v, %v", out, err)
	}
}

// TestRotation: what key A sealed, a keyring {B active, A old} opens, and
// it seals with B; a keyring without A refuses A's payloads.
func TestRotation(t *testing.T) {
	a, b := newKey(t, "2026-01"), newKey(t, "2026-07")
	old := Codec{Keys: ring(t, "", a)}
	sealedA, _ := old.Encode([]*commonpb.Payload{message(t)})

	rotated := Codec{Keys: ring(t, "2026-07", a, b)}
	if _, err := rotated.Decode(sealedA); err != nil {
		t.Fatalf("rotated keyring cannot open A's payload: %v", err)
	}
	sealedB, _ := rotated.Encode([]*commonpb.Payload{message(t)})
	if id := string(sealedB[0].Metadata[MetadataKeyID]); id != "2026-07" {
		t.Fatalf("rotated keyring seals with %q", id)
	}

	onlyB := Codec{Keys: ring(t, "", b)}
	_, err := onlyB.Decode(sealedA)
	if !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("a keyring without A: %v, want ErrUnknownKey", err)
	}
	var taskFailure *converter.WorkflowTaskFailureError
	if !errors.As(err, &taskFailure) {
		t.Fatalf("%v does not fail the workflow task (it would fail the workflow)", err)
	}
}

func TestTamperedPayloadsAreRefused(t *testing.T) {
	a, b := newKey(t, "a"), newKey(t, "b")
	c := Codec{Keys: ring(t, "a", a, b)}
	sealed, _ := c.Encode([]*commonpb.Payload{message(t)})
	for name, mutate := range map[string]func(p *commonpb.Payload){
		"flipped bit":   func(p *commonpb.Payload) { p.Data[len(p.Data)-1] ^= 1 },
		"truncated":     func(p *commonpb.Payload) { p.Data = p.Data[:10] },
		"key ID swaped": func(p *commonpb.Payload) { p.Metadata[MetadataKeyID] = []byte("b") },
		"no key ID":     func(p *commonpb.Payload) { delete(p.Metadata, MetadataKeyID) },
	} {
		t.Run(name, func(t *testing.T) {
			p := &commonpb.Payload{Metadata: map[string][]byte{}, Data: bytes.Clone(sealed[0].Data)}
			for k, v := range sealed[0].Metadata {
				p.Metadata[k] = bytes.Clone(v)
			}
			mutate(p)
			if _, err := c.Decode([]*commonpb.Payload{p}); err == nil {
				t.Fatal("opened")
			}
		})
	}
}

func TestKeyring(t *testing.T) {
	a, b := newKey(t, "a"), newKey(t, "b")
	for name, c := range map[string]struct {
		keys   []Key
		active string
		want   string
	}{
		"none":               {nil, "", "no payload keys"},
		"several, no active": {[]Key{a, b}, "", "none named active"},
		"unknown active":     {[]Key{a}, "c", "not among"},
		"short":              {[]Key{{ID: "s", Secret: []byte("short")}}, "", "5 bytes"},
		"twice":              {[]Key{a, a}, "a", "twice"},
		"bad ID":             {[]Key{{ID: "../x", Secret: a.Secret}}, "", "payload key ID"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := NewKeyring(c.keys, c.active)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err %v, want %q", err, c.want)
			}
		})
	}
}

func TestLoadKeys(t *testing.T) {
	secret := make([]byte, KeySize)
	_, _ = rand.Read(secret)
	dir := t.TempDir()
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("2026-01", base64.StdEncoding.EncodeToString(secret)+"\n")
	write("2026-07", hex.EncodeToString(secret))
	write("..data", "not a key") // a mounted Secret's own entries
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	keys, err := LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || keys[0].ID != "2026-01" || keys[1].ID != "2026-07" ||
		!bytes.Equal(keys[0].Secret, secret) || !bytes.Equal(keys[1].Secret, secret) {
		t.Fatalf("keys %v", keys)
	}
	write("broken", "c2hvcnQ=")
	if _, err := LoadDir(dir); err == nil || !strings.Contains(err.Error(), "broken") {
		t.Fatalf("a short key file: %v", err)
	}
	if _, err := LoadDir(t.TempDir()); err == nil {
		t.Fatal("an empty directory gave keys")
	}

	keys, err = ParseList("a=" + base64.StdEncoding.EncodeToString(secret) + ", b=" + base64.RawURLEncoding.EncodeToString(secret))
	if err != nil || len(keys) != 2 || keys[1].ID != "b" || !bytes.Equal(keys[1].Secret, secret) {
		t.Fatalf("ParseList: %v, %v", keys, err)
	}
	_, err = ParseList(base64.StdEncoding.EncodeToString(secret))
	if err == nil || strings.Contains(err.Error(), base64.StdEncoding.EncodeToString(secret)) {
		t.Fatalf("a key without ID: %v (must not echo the secret)", err)
	}
}

func TestCountKeys(t *testing.T) {
	a, b := newKey(t, "a"), newKey(t, "b")
	sealedA, _ := Codec{Keys: ring(t, "", a)}.Encode([]*commonpb.Payload{message(t), message(t)})
	sealedB, _ := Codec{Keys: ring(t, "", b)}.Encode([]*commonpb.Payload{message(t)})
	sa, _ := converter.GetDefaultDataConverter().ToPayload("acme")
	ev := &historypb.HistoryEvent{Attributes: &historypb.HistoryEvent_WorkflowExecutionStartedEventAttributes{
		WorkflowExecutionStartedEventAttributes: &historypb.WorkflowExecutionStartedEventAttributes{
			Input:            &commonpb.Payloads{Payloads: append(sealedA, message(t))},
			Memo:             &commonpb.Memo{Fields: map[string]*commonpb.Payload{"submission": sealedB[0]}},
			SearchAttributes: &commonpb.SearchAttributes{IndexedFields: map[string]*commonpb.Payload{"CustomerId": sa}},
		}}}
	counts := map[string]int{}
	if err := CountKeys(ev, counts); err != nil {
		t.Fatal(err)
	}
	if counts["a"] != 2 || counts["b"] != 1 || counts[Clear] != 1 || len(counts) != 3 {
		t.Fatalf("counts %v, want a:2 b:1 %s:1", counts, Clear)
	}
}

// FuzzOpen: whatever a sealed-looking payload holds, opening it gives an
// error or a payload, never a panic; and nothing opens that was not sealed.
func FuzzOpen(f *testing.F) {
	k := Key{ID: "k", Secret: bytes.Repeat([]byte{7}, KeySize)}
	keys, err := NewKeyring([]Key{k}, "")
	if err != nil {
		f.Fatal(err)
	}
	c := Codec{Keys: keys}
	// The one sealed input: made the same way in every fuzzing process (a
	// zero nonce), as Encode would make it.
	plain, _ := proto.Marshal(&commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: []byte(`"hi"`)})
	aead := keys.aeads["k"]
	nonce := make([]byte, aead.NonceSize())
	sealed := aead.Seal(nonce, nonce, plain, []byte("k"))
	f.Add([]byte("k"), sealed)
	f.Add([]byte("k"), []byte{})
	f.Add([]byte("x"), sealed)
	f.Add([]byte{}, bytes.Repeat([]byte{0}, 40))
	f.Fuzz(func(t *testing.T, id, data []byte) {
		p := &commonpb.Payload{Metadata: map[string][]byte{MetadataEncoding: []byte(EncodingSealed), MetadataKeyID: id}, Data: data}
		out, err := c.Decode([]*commonpb.Payload{p})
		if err == nil && (len(out) != 1 || out[0] == nil) {
			t.Fatalf("no error and no payload: %v", out)
		}
		if err == nil && !bytes.Equal(data, sealed) {
			// Forging a GCM tag by chance is not a thing a fuzzer does.
			t.Fatalf("opened a payload that was never sealed: %x", data)
		}
	})
}

// BenchmarkSealOpen measures the codec's cost per message payload: one seal
// and one open of a message workflow's input.
func BenchmarkSealOpen(b *testing.B) {
	c := Codec{Keys: ring(b, "", newKey(b, "a"))}
	p := []*commonpb.Payload{message(b)}
	b.ReportAllocs()
	for b.Loop() {
		s, err := c.Encode(p)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.Decode(s); err != nil {
			b.Fatal(err)
		}
	}
}

// TestFailuresAreSealed: an error that quotes a number reaches Temporal
// as "Encoded failure", its message sealed; the other side reads it whole.
func TestFailuresAreSealed(t *testing.T) {
	_, fc := Converters(ring(t, "", newKey(t, "a")))
	err := temporal.NewNonRetryableApplicationError("no route to +61412345678", "NoRoute", nil, "detail +61412345678")
	f := fc.ErrorToFailure(err)
	raw, _ := protojson.Marshal(f)
	if strings.Contains(string(raw), "61412345678") || f.GetMessage() != "Encoded failure" {
		t.Fatalf("failure sent to Temporal shows the number: %s", raw)
	}
	var back *temporal.ApplicationError
	if !errors.As(fc.FailureToError(f), &back) || back.Message() != "no route to +61412345678" || back.Type() != "NoRoute" {
		t.Fatalf("failure read back: %v", fc.FailureToError(f))
	}
	var detail string
	if err := back.Details(&detail); err != nil || detail != "detail +61412345678" {
		t.Fatalf("details read back %q, %v", detail, err)
	}
	// Reading a failure leaves it sealed: the worker reads a local
	// activity's failure before it sends it to Temporal.
	if again, _ := protojson.Marshal(f); string(again) != string(raw) {
		t.Fatalf("reading the failure changed it:\n%s\nwas\n%s", again, raw)
	}
}
