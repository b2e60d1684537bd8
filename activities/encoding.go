package activities

import (
	"context"
	"fmt"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/config"
	"github.com/smsgw/smsgw/segment"
)

// TextEncoder encodes and splits texts with the segment package: GSM 7-bit
// when every character fits, UCS-2 otherwise, concatenated by UDH.
type TextEncoder struct {
	// Refs hands out concatenation reference numbers per connector and destination.
	Refs segment.ReferenceAllocator
	// Options gives a customer's encoding options; nil means the defaults.
	Options func(customerID string) segment.Options
	// Concat gives how a connector ties parts together; nil means UDH with
	// an 8-bit reference.
	Concat func(connectorID string) segment.ConcatMode
}

func (e TextEncoder) options(customerID string) segment.Options {
	if e.Options == nil {
		return segment.Options{}
	}
	return e.Options(customerID)
}

// Encode implements Encoder.
func (e TextEncoder) Encode(text, customerID, connectorID, to string) (string, []smsgw.Part, error) {
	opt := e.options(customerID)
	if e.Concat != nil {
		opt.Concat = e.Concat(connectorID)
	}
	var ref uint16
	if c, err := segment.Count(text, opt); err != nil {
		return "", nil, err
	} else if c.Segments > 1 {
		if ref, err = e.Refs.Next(context.Background(), connectorID, to); err != nil {
			return "", nil, fmt.Errorf("concatenation reference: %w", err)
		}
	}
	plan, err := segment.Split(text, opt, ref)
	if err != nil {
		return "", nil, err
	}
	parts := make([]smsgw.Part, len(plan.Parts))
	for i, p := range plan.Parts {
		parts[i] = smsgw.Part{Seq: p.Seq, DataCoding: plan.DataCoding, ESMClass: p.ESMClass, ShortMessage: p.Payload}
		if p.SAR != nil {
			parts[i].SAR = &smsgw.SAR{Ref: p.SAR.Ref, Total: p.SAR.Total, Seq: p.SAR.Seq}
		}
	}
	return plan.Encoding.String(), parts, nil
}

// Count tells the encoding and number of parts a text will take.
func (e TextEncoder) Count(text, customerID string) (string, int, error) {
	c, err := segment.Count(text, e.options(customerID))
	if err != nil {
		return "", 0, err
	}
	return c.Encoding, c.Segments, nil
}

// CountText implements api.Counter.
func (e TextEncoder) CountText(customerID, text string) (segment.Counts, error) {
	return segment.Count(text, e.options(customerID))
}

// CustomerOptions reads a customer's encoding options from the configuration
// in force: a forced encoding, transliteration, the segment limit.
func CustomerOptions(live *config.Live) func(customerID string) segment.Options {
	return func(customerID string) segment.Options {
		var opt segment.Options
		c, ok := live.Config().Customer(customerID)
		if !ok {
			return opt
		}
		if enc, err := segment.ParseEncoding(c.Encoding.Force); err == nil {
			opt.Force = enc
		}
		opt.Transliterate = c.Encoding.Transliterate
		opt.MaxSegments = c.Encoding.MaxSegments
		return opt
	}
}

// ConnectorConcat reads a connector's concatenation mode from the
// configuration in force.
func ConnectorConcat(live *config.Live) func(connectorID string) segment.ConcatMode {
	return func(connectorID string) segment.ConcatMode {
		co, ok := live.Config().Connector(connectorID)
		if !ok {
			return segment.ConcatUDH8
		}
		m, _ := segment.ParseConcatMode(co.Concat)
		return m
	}
}
