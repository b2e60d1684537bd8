package segment

import (
	"fmt"
	"strings"
)

// MissingPartMarker stands in Assembly.Text for each part that has not
// arrived.
const MissingPartMarker = "[...]"

// IncomingPart is one part of a concatenated message as received, its text
// already decoded (see DecodePayload).
type IncomingPart struct {
	Ref   uint16 `json:"ref"`
	Total int    `json:"total"`
	Seq   int    `json:"seq"` // 1-based
	Text  string `json:"text"`
}

// Assembly gathers the parts of one concatenated message, in any order. The
// zero value is ready for use. It holds no pointers or unexported state, so
// it survives encoding/json, as it must inside workflow state.
type Assembly struct {
	Ref   uint16 `json:"ref"`
	Total int    `json:"total"` // 0 until the first part
	// Parts holds the text of each part that arrived, by sequence number.
	Parts map[int]string `json:"parts,omitempty"`
}

// Add records a part and reports whether every part has now arrived. A part
// already seen is ignored (the first copy is kept). A part whose reference
// or total differs from the first one gives ErrPartMismatch; a sequence
// number outside 1–total, or a total outside 1–255, gives ErrInvalidPart.
func (a *Assembly) Add(p IncomingPart) (complete bool, err error) {
	if p.Total < 1 || p.Total > MaxSegmentsLimit || p.Seq < 1 || p.Seq > p.Total {
		return a.Complete(), fmt.Errorf("%w: part %d of %d", ErrInvalidPart, p.Seq, p.Total)
	}
	if a.Total == 0 {
		a.Ref, a.Total = p.Ref, p.Total
	} else if p.Ref != a.Ref || p.Total != a.Total {
		return a.Complete(), fmt.Errorf("%w: part ref %d total %d, message ref %d total %d", ErrPartMismatch, p.Ref, p.Total, a.Ref, a.Total)
	}
	if a.Parts == nil {
		a.Parts = make(map[int]string, a.Total)
	}
	if _, seen := a.Parts[p.Seq]; !seen {
		a.Parts[p.Seq] = p.Text
	}
	return a.Complete(), nil
}

// Complete reports whether every part has arrived.
func (a *Assembly) Complete() bool { return a.Total > 0 && len(a.Parts) == a.Total }

// Missing returns the sequence numbers not yet received, in order.
func (a *Assembly) Missing() []int {
	var m []int
	for seq := 1; seq <= a.Total; seq++ {
		if _, ok := a.Parts[seq]; !ok {
			m = append(m, seq)
		}
	}
	return m
}

// Text joins the parts in order, with MissingPartMarker for each one that
// has not arrived; partial reports whether any is missing (or none arrived).
func (a *Assembly) Text() (text string, partial bool) {
	if a.Total == 0 {
		return "", true
	}
	var b strings.Builder
	for seq := 1; seq <= a.Total; seq++ {
		t, ok := a.Parts[seq]
		if !ok {
			t, partial = MissingPartMarker, true
		}
		b.WriteString(t)
	}
	return b.String(), partial
}
