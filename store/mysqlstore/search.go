package mysqlstore

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/smsgw/smsgw"
)

// cursor is where a page of a search ends: the last message's acceptance
// time and ID. The next page starts after it in the search's order.
type cursor struct {
	At int64  `json:"t"` // accepted_at, Unix microseconds
	ID string `json:"i"`
}

// pageToken encodes a cursor for the API; it is opaque to callers.
func pageToken(r smsgw.MessageRecord) string {
	b, _ := json.Marshal(cursor{At: r.AcceptedAt.UnixMicro(), ID: r.ID})
	return base64.RawURLEncoding.EncodeToString(b)
}

func parsePageToken(tok string) (cursor, error) {
	var c cursor
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err == nil {
		err = json.Unmarshal(b, &c)
	}
	if err != nil || c.ID == "" {
		return cursor{}, smsgw.Errorf(smsgw.EINVALID, "pageToken is not a page token of this search")
	}
	return c, nil
}

// SearchMessages implements smsgw.MessageSearcher: the messages that match
// q, newest accepted first, ties by ID (newest first), a page at a time. A
// page is read with keyset pagination (after the previous page's last
// acceptance time and ID), so a page costs the same however deep, and
// messages accepted meanwhile do not shift the pages that follow. A
// message appears once its acceptance time is recorded, which the first
// write of every message carries.
func (s *Store) SearchMessages(ctx context.Context, q smsgw.MessageQuery) (smsgw.MessagePage, error) {
	query, args, size, err := searchSQL(q)
	if err != nil {
		return smsgw.MessagePage{}, err
	}
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return smsgw.MessagePage{}, fmt.Errorf("mysqlstore: search messages: %w", wrap(err))
	}
	defer rows.Close()
	page := smsgw.MessagePage{Messages: []smsgw.MessageRecord{}}
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return smsgw.MessagePage{}, fmt.Errorf("mysqlstore: search messages: %w", wrap(err))
		}
		page.Messages = append(page.Messages, r)
	}
	if err := rows.Err(); err != nil {
		return smsgw.MessagePage{}, fmt.Errorf("mysqlstore: search messages: %w", wrap(err))
	}
	if len(page.Messages) > size {
		page.Messages = page.Messages[:size]
		page.NextPageToken = pageToken(page.Messages[size-1])
	}
	return page, nil
}

// searchSQL is the statement that reads a page of q, its arguments and the
// page size, or an EINVALID error for a query that cannot be run. It asks
// for one message more than the page, which tells whether there is a next
// page.
func searchSQL(q smsgw.MessageQuery) (query string, args []any, size int, err error) {
	if q.PageSize < 0 {
		return "", nil, 0, smsgw.Errorf(smsgw.EINVALID, "pageSize must not be negative")
	}
	size = q.PageSize
	if size == 0 {
		size = smsgw.DefaultMessagePageSize
	}
	size = min(size, smsgw.MaxMessagePageSize)
	if q.Status != "" && !q.Status.Valid() {
		return "", nil, 0, smsgw.Errorf(smsgw.EINVALID, "status %q is not a message status", q.Status)
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && !q.Since.Before(q.Until) {
		return "", nil, 0, smsgw.Errorf(smsgw.EINVALID, "since must be before until")
	}
	where := []string{"accepted_at IS NOT NULL"}
	for _, f := range []struct{ column, value string }{
		{"customer_id", q.CustomerID}, {"status", string(q.Status)}, {"dst", q.To}, {"src", q.From},
		{"connector_id", q.ConnectorID}, {"client_ref", q.ClientRef},
	} {
		if f.value != "" {
			where, args = append(where, f.column+" = ?"), append(args, f.value)
		}
	}
	if !q.Since.IsZero() {
		where, args = append(where, "accepted_at >= ?"), append(args, q.Since.UTC())
	}
	if !q.Until.IsZero() {
		where, args = append(where, "accepted_at < ?"), append(args, q.Until.UTC())
	}
	if q.PageToken != "" {
		c, err := parsePageToken(q.PageToken)
		if err != nil {
			return "", nil, 0, err
		}
		at := time.UnixMicro(c.At).UTC()
		// The row comparison, spelled out: MariaDB uses an index range for
		// this form, not for (accepted_at, id) < (?, ?).
		where = append(where, "(accepted_at < ? OR (accepted_at = ? AND id < ?))")
		args = append(args, at, at, c.ID)
	}
	// The page's IDs first, then their rows (a deferred join): the inner
	// query reads only an index that holds every column it compares, so
	// the server reads a range of it from the cursor on. Asked for whole
	// rows at once, MariaDB may read the customer's entries from the
	// newest instead and filter, which for a page deep in a big
	// customer's history skips millions of them (docs/search.md).
	query = "SELECT " + columns + " FROM messages JOIN (SELECT id FROM messages WHERE " + strings.Join(where, " AND ") +
		" ORDER BY accepted_at DESC, id DESC LIMIT ?) page USING (id) ORDER BY accepted_at DESC, id DESC"
	return query, append(args, size+1), size, nil
}

// Usage implements smsgw.UsageReader: the messages that reached a final
// status, their segments and what they were charged, per day of acceptance
// in the query's time zone, customer, entry point, connector, status and
// currency, ordered by those. The
// days are summed from usage_buckets' UTC quarter-hours; between two
// changes of the zone's offset (daylight saving) a bucket's local day is
// its UTC time plus the offset, so the sum is done in SQL a stretch of
// constant offset at a time.
func (s *Store) Usage(ctx context.Context, q smsgw.UsageQuery) ([]smsgw.UsageRow, error) {
	type key struct {
		day, customer, entry, connector, status, currency string
	}
	sums := map[key]*smsgw.UsageRow{}
	if err := eachStretch(q, func(offset int, start, end time.Time) error {
		query, args := stretchSQL(`customer_id, entry_point, connector_id, status, currency,
			SUM(messages), SUM(segments), SUM(cost_micros) FROM usage_buckets`, "customer_id, entry_point, connector_id, status, currency",
			q.CustomerID, offset, start, end)
		return s.sumUsage(ctx, query, args, func(r smsgw.UsageRow) {
			k := key{r.Day, r.CustomerID, string(r.EntryPoint), r.ConnectorID, string(r.Status), r.Currency}
			if sum, ok := sums[k]; ok {
				sum.Messages += r.Messages
				sum.Segments += r.Segments
				sum.CostMicros += r.CostMicros
				return
			}
			sums[k] = &r
		})
	}); err != nil {
		return nil, err
	}
	out := make([]smsgw.UsageRow, 0, len(sums))
	for _, r := range sums {
		if r.Messages > 0 {
			out = append(out, *r)
		}
	}
	slices.SortFunc(out, func(a, b smsgw.UsageRow) int {
		for _, c := range [][2]string{{a.Day, b.Day}, {a.CustomerID, b.CustomerID}, {string(a.EntryPoint), string(b.EntryPoint)},
			{a.ConnectorID, b.ConnectorID}, {string(a.Status), string(b.Status)}, {a.Currency, b.Currency}} {
			if n := strings.Compare(c[0], c[1]); n != 0 {
				return n
			}
		}
		return 0
	})
	return out, nil
}

// eachStretch checks the query's range of days and calls f for each
// stretch of it where the zone's offset (in seconds) is constant, with the
// stretch's bounds.
func eachStretch(q smsgw.UsageQuery, f func(offset int, start, end time.Time) error) error {
	loc := q.Location
	if loc == nil {
		loc = time.UTC
	}
	from := time.Date(q.From.Year(), q.From.Month(), q.From.Day(), 0, 0, 0, 0, loc)
	to := time.Date(q.To.Year(), q.To.Month(), q.To.Day(), 0, 0, 0, 0, loc)
	if !from.Before(to) {
		return smsgw.Errorf(smsgw.EINVALID, "the range of days is empty: from must be before to")
	}
	if to.After(from.AddDate(0, 0, smsgw.MaxUsageDays)) {
		return smsgw.Errorf(smsgw.EINVALID, "the range is longer than %d days", smsgw.MaxUsageDays)
	}
	for start := from; start.Before(to); {
		_, end := start.ZoneBounds()
		if end.IsZero() || end.After(to) {
			end = to
		}
		_, offset := start.Zone()
		if err := f(offset, start, end); err != nil {
			return err
		}
		start = end
	}
	return nil
}

// stretchSQL is the query of one stretch of eachStretch: the local day of
// each bucket (offset seconds from UTC) and what columnsFrom selects, from
// the buckets of [start, end) of the customer (every one when ""),
// grouped by the day and groupBy.
func stretchSQL(columnsFrom, groupBy, customerID string, offset int, start, end time.Time) (string, []any) {
	query := "SELECT DATE_FORMAT(DATE_ADD(bucket, INTERVAL ? MINUTE), '%Y-%m-%d'), " + columnsFrom + " WHERE bucket >= ? AND bucket < ?"
	args := []any{offset / 60, start.UTC(), end.UTC()}
	if customerID != "" {
		query += " AND customer_id = ?"
		args = append(args, customerID)
	}
	return query + " GROUP BY 1, " + groupBy, args
}

// Refusals implements smsgw.UsageReader: the refused submissions per day
// of the refusal in the query's time zone, customer and reason, ordered by
// those, summed from usage_refusals as Usage sums usage_buckets.
func (s *Store) Refusals(ctx context.Context, q smsgw.UsageQuery) ([]smsgw.RefusalRow, error) {
	type key struct{ day, customer, reason string }
	sums := map[key]int64{}
	err := eachStretch(q, func(offset int, start, end time.Time) error {
		query, args := stretchSQL("customer_id, reason, SUM(refusals) FROM usage_refusals", "customer_id, reason", q.CustomerID, offset, start, end)
		rows, err := s.db.QueryContext(ctx, query, args...)
		if err != nil {
			return fmt.Errorf("mysqlstore: refusals: %w", wrap(err))
		}
		defer rows.Close()
		for rows.Next() {
			var k key
			var n int64
			if err := rows.Scan(&k.day, &k.customer, &k.reason, &n); err != nil {
				return fmt.Errorf("mysqlstore: refusals: %w", wrap(err))
			}
			sums[k] += n
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("mysqlstore: refusals: %w", wrap(err))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]smsgw.RefusalRow, 0, len(sums))
	for k, n := range sums {
		if n > 0 {
			out = append(out, smsgw.RefusalRow{Day: k.day, CustomerID: k.customer, Reason: k.reason, Refusals: n})
		}
	}
	slices.SortFunc(out, func(a, b smsgw.RefusalRow) int {
		return cmp.Or(strings.Compare(a.Day, b.Day), strings.Compare(a.CustomerID, b.CustomerID), strings.Compare(a.Reason, b.Reason))
	})
	return out, nil
}

// CountRefusal implements smsgw.RefusalCounter: one more refused
// submission of the customer for the reason, in at's quarter-hour.
func (s *Store) CountRefusal(ctx context.Context, customerID, reason string, at time.Time) error {
	if _, err := s.db.ExecContext(ctx, `INSERT INTO usage_refusals (bucket, customer_id, reason, refusals) VALUES (?, ?, ?, 1)
		ON DUPLICATE KEY UPDATE refusals = refusals + 1`, quarterHour(at), customerID, truncate(reason, 64)); err != nil {
		return fmt.Errorf("mysqlstore: count refusal: %w", wrap(err))
	}
	return nil
}

// sumUsage runs one usage query and hands each row to add.
func (s *Store) sumUsage(ctx context.Context, query string, args []any, add func(smsgw.UsageRow)) error {
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("mysqlstore: usage: %w", wrap(err))
	}
	defer rows.Close()
	for rows.Next() {
		var r smsgw.UsageRow
		var entry, status string
		if err := rows.Scan(&r.Day, &r.CustomerID, &entry, &r.ConnectorID, &status, &r.Currency, &r.Messages, &r.Segments, &r.CostMicros); err != nil {
			return fmt.Errorf("mysqlstore: usage: %w", wrap(err))
		}
		r.EntryPoint, r.Status = smsgw.EntryPoint(entry), smsgw.Status(status)
		add(r)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("mysqlstore: usage: %w", wrap(err))
	}
	return nil
}
