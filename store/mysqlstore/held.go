package mysqlstore

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"

	"github.com/smsgw/smsgw"
)

// Held messages (migrations/0009_held_messages.sql): the message worker
// marks a row when its message is held for review and clears it when the
// review ends, so that any replica lists the same held messages.

// MarkHeld records the hold of a message whose row exists (the worker
// writes the row first). Marking again changes nothing.
func (s *Store) MarkHeld(ctx context.Context, h smsgw.HeldMessage) error {
	return s.withRetry(ctx, func() error {
		_, err := s.db.ExecContext(ctx, `UPDATE messages SET held_at = ?, hold_until = ?, hold_rule = ?, hold_reason = ?
			WHERE id = ? AND held_at IS NULL`,
			h.HeldAt.UTC(), h.HoldUntil.UTC(), truncate(h.Rule, 128), truncate(h.Reason, 512), h.ID)
		return err
	}, "mark message "+h.ID+" held")
}

// ClearHeld records that a message's review ended. A message that was not
// held is left as it is.
func (s *Store) ClearHeld(ctx context.Context, messageID string) error {
	return s.withRetry(ctx, func() error {
		_, err := s.db.ExecContext(ctx, `UPDATE messages SET held_at = NULL, hold_until = NULL, hold_rule = '', hold_reason = ''
			WHERE id = ? AND held_at IS NOT NULL`, messageID)
		return err
	}, "clear the hold of message "+messageID)
}

// heldCursor is where a page of held messages ends.
type heldCursor struct {
	At int64  `json:"h"` // held_at, Unix microseconds
	ID string `json:"i"`
}

// ListHeld implements smsgw.HeldLister: messages still ACCEPTED with a
// hold, oldest hold first (ties by ID), a page at a time with keyset
// pagination.
func (s *Store) ListHeld(ctx context.Context, q smsgw.HeldQuery) (smsgw.HeldPage, error) {
	size := q.PageSize
	switch {
	case size == 0:
		size = smsgw.DefaultHeldPageSize
	case size < 0 || size > smsgw.MaxHeldPageSize:
		return smsgw.HeldPage{}, smsgw.Errorf(smsgw.EINVALID, "pageSize must be between 1 and %d", smsgw.MaxHeldPageSize)
	}
	query := `SELECT id, customer_id, src, dst, hold_rule, hold_reason, held_at, hold_until FROM messages
		WHERE held_at IS NOT NULL AND status = ?`
	args := []any{string(smsgw.StatusAccepted)}
	if q.CustomerID != "" {
		query += ` AND customer_id = ?`
		args = append(args, q.CustomerID)
	}
	if q.PageToken != "" {
		var c heldCursor
		b, err := base64.RawURLEncoding.DecodeString(q.PageToken)
		if err == nil {
			err = json.Unmarshal(b, &c)
		}
		if err != nil || c.ID == "" {
			return smsgw.HeldPage{}, smsgw.Errorf(smsgw.EINVALID, "pageToken is not a page token of this list")
		}
		at := time.UnixMicro(c.At).UTC()
		query += ` AND (held_at > ? OR (held_at = ? AND id > ?))`
		args = append(args, at, at, c.ID)
	}
	query += ` ORDER BY held_at, id LIMIT ?`
	args = append(args, size+1)
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return smsgw.HeldPage{}, fmt.Errorf("mysqlstore: list held messages: %w", wrap(err))
	}
	defer rows.Close()
	page := smsgw.HeldPage{Messages: []smsgw.HeldMessage{}}
	for rows.Next() {
		var h smsgw.HeldMessage
		var until sql.NullTime
		if err := rows.Scan(&h.ID, &h.CustomerID, &h.From, &h.To, &h.Rule, &h.Reason, &h.HeldAt, &until); err != nil {
			return smsgw.HeldPage{}, fmt.Errorf("mysqlstore: list held messages: %w", wrap(err))
		}
		h.HoldUntil = until.Time
		page.Messages = append(page.Messages, h)
	}
	if err := rows.Err(); err != nil {
		return smsgw.HeldPage{}, fmt.Errorf("mysqlstore: list held messages: %w", wrap(err))
	}
	if len(page.Messages) > size {
		page.Messages = page.Messages[:size]
		last := page.Messages[size-1]
		b, _ := json.Marshal(heldCursor{At: last.HeldAt.UnixMicro(), ID: last.ID})
		page.NextPageToken = base64.RawURLEncoding.EncodeToString(b)
	}
	return page, nil
}
