package smsgw

import (
	"crypto/sha256"
	"encoding/hex"
	"time"
)

// ErasureRecord is the audit record of a request to erase a phone number:
// who asked, when, and what was removed from each store. It holds a hash of
// the number, never the number itself, so the audit does not keep what was
// erased; NumberHash tells whether a number was erased.
type ErasureRecord struct {
	ID          string           `json:"id" bson:"_id"`
	NumberHash  string           `json:"numberHash" bson:"numberHash"`
	RequestedBy string           `json:"requestedBy,omitempty" bson:"requestedBy,omitempty"`
	Reason      string           `json:"reason,omitempty" bson:"reason,omitempty"`
	StartedAt   time.Time        `json:"startedAt" bson:"startedAt"`
	FinishedAt  time.Time        `json:"finishedAt" bson:"finishedAt"`
	Messages    int              `json:"messages" bson:"messages"`
	Workflows   int              `json:"workflows" bson:"workflows"`
	Terminated  int              `json:"terminated" bson:"terminated"`
	Deleted     map[string]int64 `json:"deleted" bson:"deleted"` // per "store/collection" or "store/table"
	Error       string           `json:"error,omitempty" bson:"error,omitempty"`
}

// NumberHash is the hex SHA-256 of a phone number in E.164 form with '+',
// the form erasure audit records name a number in.
func NumberHash(e164 string) string {
	sum := sha256.Sum256([]byte(e164))
	return hex.EncodeToString(sum[:])
}
