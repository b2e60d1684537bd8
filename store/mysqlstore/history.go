package mysqlstore

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// ReportCustomers returns the customers that have message rows, for the
// retention purge.
func (s *Store) ReportCustomers(ctx context.Context) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT DISTINCT customer_id FROM messages")
	if err != nil {
		return nil, fmt.Errorf("mysqlstore: customers: %w", wrap(err))
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("mysqlstore: customers: %w", wrap(err))
		}
		out = append(out, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("mysqlstore: customers: %w", wrap(err))
	}
	return out, nil
}

// PurgeMessages deletes a customer's message rows accepted before before
// (rows with no acceptance time: last updated before it), batch rows per
// statement, and returns how many it deleted. Each statement deletes at
// most batch rows in the order of the (customer_id, accepted_at) index, in
// its own short transaction, so the purge never locks the table and
// submissions go on beside it. The daily counts stay: they are aggregates.
func (s *Store) PurgeMessages(ctx context.Context, customerID string, before time.Time, batch int) (int64, error) {
	if batch <= 0 {
		batch = 1000
	}
	before = before.UTC()
	var total int64
	for _, q := range []string{
		"DELETE FROM messages WHERE customer_id = ? AND accepted_at < ? ORDER BY accepted_at LIMIT ?",
		"DELETE FROM messages WHERE customer_id = ? AND accepted_at IS NULL AND updated_at < ? LIMIT ?",
	} {
		for {
			var n int64
			err := s.withRetry(ctx, func() error {
				res, err := s.db.ExecContext(ctx, q, customerID, before, batch)
				if err != nil {
					return err
				}
				n, err = res.RowsAffected()
				return err
			}, "purge messages of "+customerID)
			total += n
			if err != nil {
				return total, err
			}
			if n < int64(batch) {
				break
			}
		}
	}
	return total, nil
}

// MessageIDsByNumber returns the IDs of the messages to or from any of
// numbers. The destination is indexed; the sender is not (erasures are
// rare), so that half reads the whole table.
func (s *Store) MessageIDsByNumber(ctx context.Context, numbers []string) ([]string, error) {
	if len(numbers) == 0 {
		return nil, nil
	}
	marks := strings.TrimSuffix(strings.Repeat("?, ", len(numbers)), ", ")
	args := make([]any, 0, 2*len(numbers))
	for range 2 {
		for _, n := range numbers {
			args = append(args, n)
		}
	}
	rows, err := s.db.QueryContext(ctx, "SELECT id FROM messages WHERE dst IN ("+marks+") UNION SELECT id FROM messages WHERE src IN ("+marks+")", args...)
	if err != nil {
		return nil, fmt.Errorf("mysqlstore: messages by number: %w", wrap(err))
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("mysqlstore: messages by number: %w", wrap(err))
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("mysqlstore: messages by number: %w", wrap(err))
	}
	return ids, nil
}

// DeleteMessages deletes the rows of messages by ID, 500 per statement,
// and returns how many it deleted. The daily counts stay.
func (s *Store) DeleteMessages(ctx context.Context, ids []string) (int64, error) {
	var total int64
	for start := 0; start < len(ids); start += 500 {
		chunk := ids[start:min(start+500, len(ids))]
		args := make([]any, len(chunk))
		for i, id := range chunk {
			args[i] = id
		}
		marks := strings.TrimSuffix(strings.Repeat("?, ", len(chunk)), ", ")
		var n int64
		err := s.withRetry(ctx, func() error {
			res, err := s.db.ExecContext(ctx, "DELETE FROM messages WHERE id IN ("+marks+")", args...)
			if err != nil {
				return err
			}
			n, err = res.RowsAffected()
			return err
		}, fmt.Sprintf("delete %d messages", len(chunk)))
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}
