package mysqlstore

import (
	"context"
	"fmt"
	"time"
)

// The admission rules' counters (rules.Counters), shared by every replica.
// Each count is one atomic upsert: INSERT … ON DUPLICATE KEY UPDATE sets
// LAST_INSERT_ID to the count after the change, and the server returns it
// with the statement's result, so replicas counting at once never lose a
// count nor read another's.

// allPrefixes is the prefix of a customer's traffic to every destination.
const allPrefixes = "*"

// trafficKeep is how long an hour's traffic count is kept: the pumping
// guard looks 7 days back.
const trafficKeep = 8 * 24 * time.Hour

// AddVelocity implements rules.Counters. A negative n (a count taken back)
// answers 0: nothing decides on it.
func (s *Store) AddVelocity(ctx context.Context, key string, bucket, expire time.Time, n int64) (int64, error) {
	if n < 0 {
		_, err := s.db.ExecContext(ctx, "UPDATE velocity_counts SET n = GREATEST(n + ?, 0) WHERE counter_key = ? AND bucket_start = ?",
			n, key, bucket.UTC())
		if err != nil {
			return 0, fmt.Errorf("mysqlstore: velocity count: %w", wrap(err))
		}
		return 0, nil
	}
	res, err := s.db.ExecContext(ctx, `INSERT INTO velocity_counts (counter_key, bucket_start, n, expire_at)
		VALUES (?, ?, LAST_INSERT_ID(?), ?)
		ON DUPLICATE KEY UPDATE n = LAST_INSERT_ID(n + VALUES(n))`, key, bucket.UTC(), n, expire.UTC())
	if err != nil {
		return 0, fmt.Errorf("mysqlstore: velocity count: %w", wrap(err))
	}
	count, err := res.LastInsertId()
	if err != nil {
		return 0, fmt.Errorf("mysqlstore: velocity count: %w", err)
	}
	return count, nil
}

// AddTraffic implements rules.Counters. A negative n (a count taken back)
// answers 0 and 0: nothing decides on them.
func (s *Store) AddTraffic(ctx context.Context, customerID, prefix string, hour time.Time, n int64) (int64, int64, error) {
	var counts [2]int64
	for i, p := range []string{prefix, allPrefixes} {
		if n < 0 {
			if _, err := s.db.ExecContext(ctx, "UPDATE traffic_counts SET n = GREATEST(n + ?, 0) WHERE customer_id = ? AND hour_start = ? AND prefix = ?",
				n, customerID, hour.UTC(), p); err != nil {
				return 0, 0, fmt.Errorf("mysqlstore: traffic count: %w", wrap(err))
			}
			continue
		}
		res, err := s.db.ExecContext(ctx, `INSERT INTO traffic_counts (customer_id, hour_start, prefix, n, expire_at)
			VALUES (?, ?, ?, LAST_INSERT_ID(?), ?)
			ON DUPLICATE KEY UPDATE n = LAST_INSERT_ID(n + VALUES(n))`, customerID, hour.UTC(), p, n, hour.Add(trafficKeep).UTC())
		if err != nil {
			return 0, 0, fmt.Errorf("mysqlstore: traffic count: %w", wrap(err))
		}
		if counts[i], err = res.LastInsertId(); err != nil {
			return 0, 0, fmt.Errorf("mysqlstore: traffic count: %w", err)
		}
	}
	return counts[0], counts[1], nil
}

// Traffic implements rules.Counters.
func (s *Store) Traffic(ctx context.Context, customerID string, from, to time.Time) (map[string]int64, int64, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT prefix, SUM(n) FROM traffic_counts
		WHERE customer_id = ? AND hour_start >= ? AND hour_start < ? GROUP BY prefix`, customerID, from.UTC(), to.UTC())
	if err != nil {
		return nil, 0, fmt.Errorf("mysqlstore: traffic of %s: %w", customerID, wrap(err))
	}
	defer rows.Close()
	byPrefix, total := map[string]int64{}, int64(0)
	for rows.Next() {
		var prefix string
		var n int64
		if err := rows.Scan(&prefix, &n); err != nil {
			return nil, 0, fmt.Errorf("mysqlstore: traffic of %s: %w", customerID, err)
		}
		if prefix == allPrefixes {
			total = n
		} else {
			byPrefix[prefix] = n
		}
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("mysqlstore: traffic of %s: %w", customerID, wrap(err))
	}
	return byPrefix, total, nil
}

// ExpireRuleCounters removes the counts past their expiry; the gateway
// runs it periodically.
func (s *Store) ExpireRuleCounters(ctx context.Context, now time.Time) (int64, error) {
	var removed int64
	for _, table := range []string{"velocity_counts", "traffic_counts"} {
		res, err := s.db.ExecContext(ctx, "DELETE FROM "+table+" WHERE expire_at < ?", now.UTC())
		if err != nil {
			return removed, fmt.Errorf("mysqlstore: expire %s: %w", table, wrap(err))
		}
		n, _ := res.RowsAffected()
		removed += n
	}
	return removed, nil
}
