package payloadcrypt

import (
	"crypto/rand"
	"errors"
	"fmt"

	commonpb "go.temporal.io/api/common/v1"
	failurepb "go.temporal.io/api/failure/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/protobuf/proto"
)

// The envelope of a sealed payload: its metadata names the encoding and the
// key; its data is a 12-byte nonce followed by the AES-256-GCM sealing of
// the original payload (metadata and data, in protobuf), with the key ID as
// additional data so the metadata cannot be swapped.
const (
	MetadataEncoding = "encoding"
	MetadataKeyID    = "encryption-key-id"
	EncodingSealed   = "binary/encrypted"
)

// Codec is the converter.PayloadCodec of a Keyring.
type Codec struct {
	Keys *Keyring
}

// Encode implements converter.PayloadCodec: each payload is sealed with the
// active key.
func (c Codec) Encode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	id := c.Keys.active
	aead := c.Keys.aeads[id]
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		plain, err := proto.Marshal(p)
		if err != nil {
			return payloads, fmt.Errorf("seal payload: %w", err)
		}
		data := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plain)+aead.Overhead())
		if _, err := rand.Read(data); err != nil {
			return payloads, fmt.Errorf("seal payload: %w", err)
		}
		out[i] = &commonpb.Payload{
			Metadata: map[string][]byte{MetadataEncoding: []byte(EncodingSealed), MetadataKeyID: []byte(id)},
			Data:     aead.Seal(data, data, plain, []byte(id)),
		}
	}
	return out, nil
}

// Decode implements converter.PayloadCodec: sealed payloads are opened with
// the key they name; others (written before encryption was turned on) pass
// unchanged. A payload that cannot be opened fails the workflow task, not
// the workflow, so a worker that lacks a key retries (on a replica that has
// it, or once it is given the key) and no message is lost.
func (c Codec) Decode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		if string(p.GetMetadata()[MetadataEncoding]) != EncodingSealed {
			out[i] = p
			continue
		}
		opened, err := c.Keys.open(p)
		if err != nil {
			return payloads, converter.NewWorkflowTaskFailureError(err)
		}
		out[i] = opened
	}
	return out, nil
}

// ErrUnknownKey is returned for a payload sealed with a key not held.
var ErrUnknownKey = errors.New("payload sealed with a key this process does not hold")

// open opens one sealed payload.
func (r *Keyring) open(p *commonpb.Payload) (*commonpb.Payload, error) {
	id := string(p.GetMetadata()[MetadataKeyID])
	aead, ok := r.aeads[id]
	if !ok {
		return nil, fmt.Errorf("%w: key ID %q (held: %v)", ErrUnknownKey, truncate(id), r.ids)
	}
	data := p.GetData()
	if len(data) < aead.NonceSize()+aead.Overhead() {
		return nil, fmt.Errorf("sealed payload of %d bytes is too short", len(data))
	}
	plain, err := aead.Open(nil, data[:aead.NonceSize()], data[aead.NonceSize():], []byte(id))
	if err != nil {
		return nil, fmt.Errorf("open payload sealed with key %q: %w", id, err)
	}
	var orig commonpb.Payload
	if err := proto.Unmarshal(plain, &orig); err != nil {
		return nil, fmt.Errorf("open payload sealed with key %q: %w", id, err)
	}
	return &orig, nil
}

// Converters are the data and failure converters of a Temporal client (and
// the workers built on it) that seals every payload with keys, and also the
// message and stack trace of every failure (an error may quote a number or
// a text). A nil keys gives the SDK's defaults: payloads in clear.
func Converters(keys *Keyring) (converter.DataConverter, converter.FailureConverter) {
	if keys == nil {
		return converter.GetDefaultDataConverter(), temporal.GetDefaultFailureConverter()
	}
	dc := converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), Codec{Keys: keys})
	return dc, failureConverter{temporal.NewDefaultFailureConverter(temporal.DefaultFailureConverterOptions{
		DataConverter:          dc,
		EncodeCommonAttributes: true,
	})}
}

// failureConverter is the SDK's, except that reading a failure leaves the
// failure as it was. The SDK's writes the opened message back into the
// failure it reads; the worker reads the failure of a local activity's
// marker before it sends the marker to Temporal, so the message would reach
// Temporal in clear beside its sealed copy.
type failureConverter struct {
	converter.FailureConverter
}

func (c failureConverter) FailureToError(f *failurepb.Failure) error {
	if f == nil {
		return nil
	}
	return c.FailureConverter.FailureToError(proto.Clone(f).(*failurepb.Failure))
}
