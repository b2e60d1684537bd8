// Package mysqlstore is the reporting database: one row per message, kept
// up to date as the message moves, and daily counts of final statuses per
// customer and connector. Reports and exports read from here, never from
// Temporal.
//
// It runs on MySQL 8, MariaDB 10.11 and go-mysql-server. The schema lives in
// migrations/ and is applied by Open.
//
// The DSN is go-sql-driver's form, and must name a database:
//
//	user:password@tcp(host:3306)/smsgw?parseTime=true&loc=UTC
//
// parseTime=true and loc=UTC are set by Open whatever the DSN says: every
// time is stored as UTC in DATETIME(6) columns. interpolateParams=true is
// set unless the DSN says otherwise (one round trip a statement).
package mysqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-sql-driver/mysql"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/store/groupcommit"
)

// what names the reporting database in Unavailable errors.
const what = "reporting database"

// maxErrorText is the size of messages.error_text; longer texts are cut.
const maxErrorText = 512

// checkSizes refuses a record whose fields do not fit their columns (see
// migrations/), instead of letting the server fail the statement.
func checkSizes(r smsgw.MessageRecord) error {
	for _, f := range []struct {
		name, value string
		max         int
	}{
		{"id", r.ID, 64}, {"customer", r.CustomerID, 64}, {"entry point", string(r.EntryPoint), 16},
		{"from", r.From, 32}, {"to", r.To, 32}, {"connector", r.ConnectorID, 64},
		{"upstream ID", r.UpstreamID, 128}, {"encoding", r.Encoding, 16}, {"error code", r.ErrorCode, 64},
		{"client reference", r.ClientRef, 64}, {"currency", r.Currency, 3},
	} {
		if utf8.RuneCountInString(f.value) > f.max {
			return smsgw.Errorf(smsgw.EINVALID, "message record %.64s: %s is longer than %d characters", r.ID, f.name, f.max)
		}
	}
	return nil
}

// Store is the reporting database. It is safe for concurrent use.
type Store struct {
	db   *sql.DB
	rows *groupcommit.Committer[smsgw.MessageRecord]
	// joined is true when several statements go in one query (the
	// server takes them and the driver quotes the arguments itself): a
	// batch of rows then takes three round trips instead of seven.
	joined bool
}

// Option changes how Open sets up the store.
type Option func(*options)

type options struct {
	batching groupcommit.Options
	metrics  *groupcommit.Metrics
}

// WithGroupCommit sets how reporting rows are batched: the rows of
// concurrent callers are upserted in one transaction, each caller
// returning once it is committed. m, when set, gets the batches' metrics.
func WithGroupCommit(o groupcommit.Options, m *groupcommit.Metrics) Option {
	return func(opts *options) { opts.batching, opts.metrics = o, m }
}

// Open connects to the database in dsn, pings it and applies the schema
// migrations it has not seen. Two processes may open the same database at
// once. A server that cannot be reached gives an error with code
// smsgw.EUNAVAILABLE.
func Open(ctx context.Context, dsn string, opts ...Option) (*Store, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("mysqlstore: dsn: %w", err)
	}
	if cfg.DBName == "" {
		return nil, errors.New("mysqlstore: dsn names no database (user@tcp(host:port)/database)")
	}
	cfg.ParseTime = true
	cfg.Loc = time.UTC
	cfg.ClientFoundRows = false
	// A statement with arguments goes as one query, its arguments quoted
	// by the driver, instead of a prepare, an execute and a close: a
	// message's final row takes seven round trips instead of twelve. A
	// DSN that names interpolateParams, or a character set or collation
	// where client-side quoting is not safe, keeps prepared statements.
	if !strings.Contains(dsn, "interpolateParams=") && !unsafeQuoting(dsn) {
		cfg.InterpolateParams = true
	}
	// With the arguments quoted in the client, the statements of a batch
	// go together: its row upserts and its counts in two queries of
	// several statements each, then the commit (upsertJoined). Every
	// statement the store sends has its values as arguments, none spliced
	// into its text.
	if cfg.InterpolateParams && !unsafeQuoting(dsn) && !strings.Contains(dsn, "multiStatements=") {
		cfg.MultiStatements = true
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("mysqlstore: dsn: %w", err)
	}
	db := sql.OpenDB(connector)
	db.SetMaxIdleConns(8)
	db.SetConnMaxLifetime(5 * time.Minute)
	db.SetConnMaxIdleTime(time.Minute)
	s := &Store{db: db}
	if err := s.Ping(ctx); err != nil {
		db.Close()
		return nil, err
	}
	if err := migrate(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("mysqlstore: %w", err)
	}
	s.joined = cfg.InterpolateParams && cfg.MultiStatements && takesJoined(ctx, db)
	s.rows = groupcommit.New("reporting", s.upsertBatch, o.batching, o.metrics)
	return s, nil
}

// takesJoined reports whether the server runs two statements sent in one
// query.
func takesJoined(ctx context.Context, db *sql.DB) bool {
	rows, err := db.QueryContext(ctx, "SELECT 1; SELECT 2")
	if err != nil {
		return false
	}
	defer rows.Close()
	for rows.Next() {
	}
	if !rows.NextResultSet() {
		return false
	}
	for rows.Next() {
	}
	return rows.Err() == nil
}

// unsafeQuoting reports whether dsn names a character set or collation of
// the multibyte encodings (Big5, CP932, GB2312, GBK, SJIS) in which a byte
// of a character can read as a backslash, so that quoting arguments in the
// client is not safe.
func unsafeQuoting(dsn string) bool {
	lower := strings.ToLower(dsn)
	for _, cs := range []string{"big5", "cp932", "gb2312", "gbk", "sjis"} {
		if strings.Contains(lower, "charset="+cs) || strings.Contains(lower, "collation="+cs) || strings.Contains(lower, ","+cs) {
			return true
		}
	}
	return false
}

// Close writes the rows still waiting and closes the connection pool.
func (s *Store) Close() error {
	s.rows.Close()
	return s.db.Close()
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("mysqlstore: ping: %w", wrap(err))
	}
	return nil
}

// ahead is true when the incoming row is not behind the stored one: a
// higher status, or the same status again (a retry, or a richer update).
const ahead = `(VALUES(status_rank) > status_rank OR VALUES(status) = status)`

// upsertValues is one row of upsertSQL; a batch repeats it.
const upsertValues = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"

// upsertSQL inserts a message or merges an update into it in one statement,
// so concurrent retries are safe. MySQL assigns left to right and later
// expressions see earlier assignments, so status and status_rank come last.
const upsertSQL = `INSERT INTO messages (id, customer_id, entry_point, src, dst, status, status_rank,
	connector_id, upstream_id, segments, encoding, error_code, error_text,
	accepted_at, sent_at, done_at, updated_at, client_ref, cost_micros, currency)
VALUES ` + upsertValues + `
ON DUPLICATE KEY UPDATE
	customer_id  = IF(customer_id = '', VALUES(customer_id), customer_id),
	entry_point  = IF(entry_point = '', VALUES(entry_point), entry_point),
	src          = IF(src = '', VALUES(src), src),
	dst          = IF(dst = '', VALUES(dst), dst),
	accepted_at  = COALESCE(accepted_at, VALUES(accepted_at)),
	client_ref   = IF(client_ref = '', VALUES(client_ref), client_ref),
	cost_micros  = IF(VALUES(currency) <> '', VALUES(cost_micros), cost_micros),
	currency     = IF(VALUES(currency) <> '', VALUES(currency), currency),
	connector_id = IF(VALUES(connector_id) <> '' AND (connector_id = '' OR ` + ahead + `), VALUES(connector_id), connector_id),
	upstream_id  = IF(VALUES(upstream_id) <> '' AND (upstream_id = '' OR ` + ahead + `), VALUES(upstream_id), upstream_id),
	segments     = IF(VALUES(segments) > 0 AND (segments = 0 OR ` + ahead + `), VALUES(segments), segments),
	encoding     = IF(VALUES(encoding) <> '' AND (encoding = '' OR ` + ahead + `), VALUES(encoding), encoding),
	error_code   = IF(VALUES(error_code) <> '' AND (error_code = '' OR ` + ahead + `), VALUES(error_code), error_code),
	error_text   = IF(VALUES(error_text) <> '' AND (error_text = '' OR ` + ahead + `), VALUES(error_text), error_text),
	sent_at      = COALESCE(sent_at, VALUES(sent_at)),
	done_at      = COALESCE(done_at, VALUES(done_at)),
	updated_at   = GREATEST(updated_at, VALUES(updated_at)),
	status       = IF(VALUES(status_rank) > status_rank, VALUES(status), status),
	status_rank  = GREATEST(status_rank, VALUES(status_rank))`

// UpsertMessage inserts a message's row or merges r into it. It is
// idempotent and never moves a message backwards:
//   - the status changes only to a higher rank (SENT after DELIVERED keeps
//     DELIVERED; the first final status wins);
//   - the first non-null sent and done times are kept;
//   - customer, entry point, addresses, acceptance time and client
//     reference fill in when empty;
//   - connector, upstream ID, segments, encoding and error fill in when given,
//     unless r is behind the stored status.
//
// A message with a final status is counted once in daily_stats, however
// often UpsertMessage is retried or called concurrently, and in whatever
// order the updates land: when a late update fills in the customer, the
// connector or the acceptance day, the count moves with it.
func (s *Store) UpsertMessage(ctx context.Context, r smsgw.MessageRecord) error {
	if r.ID == "" {
		return smsgw.Errorf(smsgw.EINVALID, "message record has no ID")
	}
	if !r.Status.Valid() {
		return smsgw.Errorf(smsgw.EINVALID, "message record %s has unknown status %q", r.ID, r.Status)
	}
	if err := checkSizes(r); err != nil {
		return err
	}
	if r.UpdatedAt.IsZero() {
		r.UpdatedAt = time.Now()
	}
	if err := s.rows.Do(ctx, r); err != nil {
		return fmt.Errorf("mysqlstore: upsert message %s: %w", r.ID, err)
	}
	return nil
}

// upsertBatch upserts the rows of concurrent callers in one transaction:
// one multi-row statement, then the daily counts of each message, in the
// order of their IDs so that two batches lock message rows in the same
// order (the daily counts they share can still meet in opposite orders:
// the server breaks such a deadlock and the batch is retried). When the batch fails for a reason other than a lock conflict
// (which is retried), each row is written on its own, so a row the server
// refuses fails only its own caller.
func (s *Store) upsertBatch(ctx context.Context, rows []smsgw.MessageRecord) []error {
	sorted := slices.Clone(rows)
	slices.SortStableFunc(sorted, func(a, b smsgw.MessageRecord) int { return strings.Compare(a.ID, b.ID) })
	err := s.withRetry(ctx, func() error { return s.upsertTx(ctx, sorted) }, fmt.Sprintf("upsert %d messages", len(rows)))
	if err == nil {
		return nil
	}
	errs := make([]error, len(rows))
	if len(rows) == 1 || smsgw.ErrorCode(err) == smsgw.EUNAVAILABLE || ctx.Err() != nil {
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
	for i, r := range rows {
		errs[i] = s.withRetry(ctx, func() error { return s.upsertTx(ctx, []smsgw.MessageRecord{r}) }, "upsert message "+r.ID)
	}
	return errs
}

// upsertTx upserts rows, ordered by ID, and keeps daily_stats and
// usage_buckets in step, in one transaction.
func (s *Store) upsertTx(ctx context.Context, rows []smsgw.MessageRecord) error {
	ids := make([]string, 0, len(rows))
	for i, r := range rows {
		if i == 0 || rows[i-1].ID != r.ID {
			ids = append(ids, r.ID)
		}
	}
	if s.joined {
		err := s.upsertJoined(ctx, rows, ids)
		if errors.Is(err, driver.ErrBadConn) {
			// The pooled connection was gone before anything was sent
			// on it (BeginTx retries such a connection on its own).
			err = s.upsertJoined(ctx, rows, ids)
		}
		return err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	up := upsertStatement(rows)
	if _, err := tx.ExecContext(ctx, up.query, up.args...); err != nil {
		return err
	}
	read := readCountsStatement(ids)
	found, err := tx.QueryContext(ctx, read.query, read.args...)
	if err != nil {
		return err
	}
	moves, err := scanCounts(found)
	if err != nil {
		return err
	}
	for _, st := range countStatements(moves) {
		if _, err := tx.ExecContext(ctx, st.query, st.args...); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// upsertJoined is upsertTx in three round trips: the transaction's start,
// the upsert and the read of the rows in one query, the counts in
// another, then the commit. After an error the connection is dropped and
// the server rolls the transaction back. The commit goes alone: MySQL and
// MariaDB stop at the first statement of a query that fails, but
// go-mysql-server runs the rest, and would commit a batch whose counts
// failed.
func (s *Store) upsertJoined(ctx context.Context, rows []smsgw.MessageRecord, ids []string) (err error) {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		}
		_ = conn.Close()
	}()
	q, args := joined([]statement{{query: "START TRANSACTION"}, upsertStatement(rows), readCountsStatement(ids)})
	found, err := conn.QueryContext(ctx, q, args...)
	if err != nil {
		return err
	}
	moves, err := scanCounts(found)
	if err != nil {
		return err
	}
	if counts := countStatements(moves); len(counts) > 0 {
		q, args = joined(counts)
		if _, err = conn.ExecContext(ctx, q, args...); err != nil {
			return err
		}
	}
	_, err = conn.ExecContext(ctx, "COMMIT")
	return err
}

// statement is one SQL statement and its arguments.
type statement struct {
	query string
	args  []any
}

// joined is sts as one query of several statements.
func joined(sts []statement) (string, []any) {
	queries := make([]string, len(sts))
	var args []any
	for i, st := range sts {
		queries[i] = st.query
		args = append(args, st.args...)
	}
	return strings.Join(queries, ";\n"), args
}

// upsertStatement upserts rows in one statement.
func upsertStatement(rows []smsgw.MessageRecord) statement {
	query := upsertSQL
	if len(rows) > 1 {
		query = strings.Replace(upsertSQL, upsertValues, upsertValues+strings.Repeat(", "+upsertValues, len(rows)-1), 1)
	}
	args := make([]any, 0, len(rows)*20)
	for _, r := range rows {
		args = append(args,
			r.ID, r.CustomerID, string(r.EntryPoint), r.From, r.To, string(r.Status), r.Status.Rank(),
			r.ConnectorID, r.UpstreamID, r.Segments, r.Encoding, r.ErrorCode, truncate(r.ErrorText, maxErrorText),
			nullTime(&r.AcceptedAt), nullTime(r.SentAt), nullTime(r.DoneAt), r.UpdatedAt.UTC(), r.ClientRef, r.CostMicros, r.Currency)
	}
	return statement{query, args}
}

// statKey is the daily_stats and usage_buckets rows a message is counted
// under.
type statKey struct {
	bucket     time.Time // start of the UTC quarter-hour; its day is daily_stats' day
	customer   string
	connector  string
	status     string
	entryPoint string
	segments   int
	currency   string // '' when the message was not billed (yet)
	cost       int64  // micro-units of currency
}

// day is the daily_stats day of the key.
func (k statKey) day() string { return k.bucket.Format(time.DateOnly) }

// dailyKey is the part of the key daily_stats is kept by.
func (k statKey) dailyKey() [4]string { return [4]string{k.day(), k.customer, k.connector, k.status} }

// quarterHour is the start of the UTC quarter-hour t is in, a usage bucket.
func quarterHour(t time.Time) time.Time { return t.UTC().Truncate(15 * time.Minute) }

// countMove is one final row whose counts change: from counted (when
// inUsage or countedDaily says it was counted) to now.
type countMove struct {
	id           string
	now, counted statKey
	countedDaily [4]string
	inUsage      bool
}

// readCountsStatement reads the rows of ids (ordered, distinct), locked,
// for scanCounts.
func readCountsStatement(ids []string) statement {
	return statement{`SELECT id, customer_id, connector_id, status, entry_point, segments, currency, cost_micros,
		accepted_at, done_at, updated_at, counted_status, counted_day, counted_customer, counted_connector, counted_bucket,
		counted_entry_point, counted_segments, counted_currency, counted_cost_micros
		FROM messages WHERE id IN (?` + strings.Repeat(", ?", len(ids)-1) + `) ORDER BY id FOR UPDATE`, anys(ids)}
}

// scanCounts reads the rows of readCountsStatement, closes them and
// returns the final ones whose counted key is not their key now.
func scanCounts(rows *sql.Rows) ([]countMove, error) {
	defer rows.Close()
	var moves []countMove
	for rows.Next() {
		var m countMove
		var accepted, done, countedDay, countedBucket sql.NullTime
		var updated time.Time
		if err := rows.Scan(&m.id, &m.now.customer, &m.now.connector, &m.now.status, &m.now.entryPoint, &m.now.segments, &m.now.currency, &m.now.cost,
			&accepted, &done, &updated, &m.counted.status, &countedDay, &m.counted.customer, &m.counted.connector, &countedBucket,
			&m.counted.entryPoint, &m.counted.segments, &m.counted.currency, &m.counted.cost); err != nil {
			return nil, err
		}
		if !smsgw.Status(m.now.status).Final() {
			continue
		}
		at := updated
		switch {
		case accepted.Valid:
			at = accepted.Time
		case done.Valid:
			at = done.Time
		}
		m.now.bucket = quarterHour(at)
		// A row counted before usage_buckets existed (by a process that
		// predates them) has a day but no bucket: it is in daily_stats only.
		m.inUsage = countedBucket.Valid
		m.countedDaily = [4]string{"", m.counted.customer, m.counted.connector, m.counted.status}
		if countedDay.Valid {
			m.countedDaily[0] = countedDay.Time.UTC().Format(time.DateOnly)
		}
		if m.inUsage {
			m.counted.bucket = countedBucket.Time.UTC()
			if m.counted == m.now {
				continue
			}
		}
		moves = append(moves, m)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return moves, rows.Close()
}

// countStatements keep daily_stats and usage_buckets in step with the
// rows of a batch, in the transaction that has just upserted (and so
// locked) them and read them (readCountsStatement, scanCounts): a final
// row not yet counted is counted, and a counted row whose key has changed
// since (a late connector, or a charge recorded after the final status)
// is moved to its new key. A failure rolls back with the upsert, for the
// retry, so a message is counted exactly once however often its final
// status is recorded. The counts take one statement each (daily_stats,
// usage_buckets, the rows' counted keys), whatever the batch's size; only
// a row moved from an earlier key takes statements of its own, before
// them. None when moves is empty.
func countStatements(moves []countMove) []statement {
	if len(moves) == 0 {
		return nil
	}
	var sts []statement
	daily := map[[4]string]int{}
	usage := map[statKey]usageSum{} // the bucket's key (segments and cost zero) → what it gains
	for _, m := range moves {
		if m.counted.status != "" && m.countedDaily != m.now.dailyKey() {
			sts = append(sts, statement{
				"UPDATE daily_stats SET `count` = `count` - 1 WHERE day = ? AND customer_id = ? AND connector_id = ? AND status = ? AND `count` > 0",
				[]any{m.countedDaily[0], m.countedDaily[1], m.countedDaily[2], m.countedDaily[3]}})
		}
		if m.counted.status == "" || m.countedDaily != m.now.dailyKey() {
			daily[m.now.dailyKey()]++
		}
		if m.inUsage {
			c := m.counted
			sts = append(sts, statement{
				`UPDATE usage_buckets SET messages = messages - 1, segments = GREATEST(segments - ?, 0), cost_micros = cost_micros - ?
				WHERE bucket = ? AND customer_id = ? AND entry_point = ? AND connector_id = ? AND status = ? AND currency = ? AND messages > 0`,
				[]any{c.segments, c.cost, c.bucket, c.customer, c.entryPoint, c.connector, c.status, c.currency}})
		}
		k := m.now
		k.segments, k.cost = 0, 0
		sum := usage[k]
		sum.segments += m.now.segments
		sum.cost += m.now.cost
		sum.messages++
		usage[k] = sum
	}
	if len(daily) > 0 {
		sts = append(sts, dailyStatement(daily))
	}
	return append(sts, usageStatement(usage), markStatement(moves))
}

// dailyStatement adds to daily_stats, in one statement, in the order of
// the keys.
func dailyStatement(add map[[4]string]int) statement {
	keys := slices.SortedFunc(maps.Keys(add), func(a, b [4]string) int { return slices.Compare(a[:], b[:]) })
	args := make([]any, 0, 5*len(keys))
	for _, k := range keys {
		args = append(args, k[0], k[1], k[2], k[3], add[k])
	}
	return statement{"INSERT INTO daily_stats (day, customer_id, connector_id, status, `count`) VALUES (?, ?, ?, ?, ?)" +
		strings.Repeat(", (?, ?, ?, ?, ?)", len(keys)-1) +
		" ON DUPLICATE KEY UPDATE `count` = `count` + VALUES(`count`)", args}
}

// usageSum is what a usage bucket gains.
type usageSum struct {
	messages, segments int
	cost               int64
}

// usageStatement adds sums to usage_buckets, in one statement, in the
// order of the keys.
func usageStatement(sums map[statKey]usageSum) statement {
	keys := slices.SortedFunc(maps.Keys(sums), compareStatKeys)
	args := make([]any, 0, 9*len(keys))
	for _, k := range keys {
		s := sums[k]
		args = append(args, k.bucket, k.customer, k.entryPoint, k.connector, k.status, k.currency, s.messages, s.segments, s.cost)
	}
	return statement{`INSERT INTO usage_buckets (bucket, customer_id, entry_point, connector_id, status, currency, messages, segments, cost_micros)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)` + strings.Repeat(", (?, ?, ?, ?, ?, ?, ?, ?, ?)", len(keys)-1) + `
		ON DUPLICATE KEY UPDATE messages = messages + VALUES(messages), segments = segments + VALUES(segments), cost_micros = cost_micros + VALUES(cost_micros)`,
		args}
}

// markStatement records on each row the key it is now counted under, in
// one statement.
func markStatement(moves []countMove) statement {
	if len(moves) == 1 {
		m := moves[0]
		return statement{`UPDATE messages SET counted_status = ?, counted_day = ?, counted_customer = ?, counted_connector = ?,
			counted_bucket = ?, counted_entry_point = ?, counted_segments = ?, counted_currency = ?, counted_cost_micros = ? WHERE id = ?`,
			[]any{m.now.status, m.now.day(), m.now.customer, m.now.connector, m.now.bucket, m.now.entryPoint, m.now.segments, m.now.currency, m.now.cost, m.id}}
	}
	columns := []struct {
		name  string
		value func(k statKey) any
	}{
		{"counted_status", func(k statKey) any { return k.status }},
		{"counted_day", func(k statKey) any { return k.day() }},
		{"counted_customer", func(k statKey) any { return k.customer }},
		{"counted_connector", func(k statKey) any { return k.connector }},
		{"counted_bucket", func(k statKey) any { return k.bucket }},
		{"counted_entry_point", func(k statKey) any { return k.entryPoint }},
		{"counted_segments", func(k statKey) any { return k.segments }},
		{"counted_currency", func(k statKey) any { return k.currency }},
		{"counted_cost_micros", func(k statKey) any { return k.cost }},
	}
	var q strings.Builder
	args := make([]any, 0, (2*len(columns)+1)*len(moves))
	q.WriteString("UPDATE messages SET ")
	for i, c := range columns {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString(c.name + " = CASE id" + strings.Repeat(" WHEN ? THEN ?", len(moves)) + " END")
		for _, m := range moves {
			args = append(args, m.id, c.value(m.now))
		}
	}
	q.WriteString(" WHERE id IN (?" + strings.Repeat(", ?", len(moves)-1) + ")")
	for _, m := range moves {
		args = append(args, m.id)
	}
	return statement{q.String(), args}
}

// compareStatKeys orders usage_buckets keys as the table's primary key does.
func compareStatKeys(a, b statKey) int {
	return cmp.Or(a.bucket.Compare(b.bucket), strings.Compare(a.customer, b.customer), strings.Compare(a.entryPoint, b.entryPoint),
		strings.Compare(a.connector, b.connector), strings.Compare(a.status, b.status), strings.Compare(a.currency, b.currency))
}

// anys is ss as query arguments.
func anys(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// withRetry runs f, again when the server broke a deadlock or a lock wait
// (concurrent upserts of one new row can do that on InnoDB).
func (s *Store) withRetry(ctx context.Context, f func() error, op string) error {
	const attempts = 5
	var err error
	for i := range attempts {
		err = f()
		if err == nil || !retryable(err) {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("mysqlstore: %s: %w", op, ctx.Err())
		case <-time.After(time.Duration(i+1) * 5 * time.Millisecond):
		}
	}
	if err != nil {
		return fmt.Errorf("mysqlstore: %s: %w", op, wrap(err))
	}
	return nil
}

// columns is the select list that scanRecord reads.
const columns = `id, customer_id, entry_point, src, dst, status, connector_id, upstream_id, segments, encoding,
	error_code, error_text, accepted_at, sent_at, done_at, updated_at, client_ref, cost_micros, currency`

// GetMessage returns a message's row, or an error with code smsgw.ENOTFOUND.
func (s *Store) GetMessage(ctx context.Context, id string) (smsgw.MessageRecord, error) {
	row := s.db.QueryRowContext(ctx, "SELECT "+columns+" FROM messages WHERE id = ?", id)
	r, err := scanRecord(row)
	if errors.Is(err, sql.ErrNoRows) {
		return smsgw.MessageRecord{}, smsgw.Errorf(smsgw.ENOTFOUND, "message %s not found", id)
	}
	if err != nil {
		return smsgw.MessageRecord{}, fmt.Errorf("mysqlstore: get message %s: %w", id, wrap(err))
	}
	return r, nil
}

// DailyStat is one row of daily_stats.
type DailyStat struct {
	Day         time.Time // midnight UTC of the day the messages were accepted
	CustomerID  string
	ConnectorID string
	Status      smsgw.Status
	Count       int64
}

// DailyStats returns the daily counts of final statuses for days in
// [since, until), for one customer or for all when customerID is empty.
func (s *Store) DailyStats(ctx context.Context, customerID string, since, until time.Time) ([]DailyStat, error) {
	q := "SELECT day, customer_id, connector_id, status, `count` FROM daily_stats WHERE day >= ? AND day < ? AND `count` > 0"
	args := []any{since.UTC().Format(time.DateOnly), until.UTC().Format(time.DateOnly)}
	if customerID != "" {
		q += " AND customer_id = ?"
		args = append(args, customerID)
	}
	q += " ORDER BY day, customer_id, connector_id, status"
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("mysqlstore: daily stats: %w", wrap(err))
	}
	defer rows.Close()
	out := []DailyStat{}
	for rows.Next() {
		var d DailyStat
		var status string
		if err := rows.Scan(&d.Day, &d.CustomerID, &d.ConnectorID, &status, &d.Count); err != nil {
			return nil, fmt.Errorf("mysqlstore: daily stats: %w", wrap(err))
		}
		d.Status = smsgw.Status(status)
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("mysqlstore: daily stats: %w", wrap(err))
	}
	return out, nil
}

// scanner is a *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

func scanRecord(sc scanner) (smsgw.MessageRecord, error) {
	var r smsgw.MessageRecord
	var entry, status string
	var accepted, sent, done sql.NullTime
	err := sc.Scan(&r.ID, &r.CustomerID, &entry, &r.From, &r.To, &status, &r.ConnectorID, &r.UpstreamID,
		&r.Segments, &r.Encoding, &r.ErrorCode, &r.ErrorText, &accepted, &sent, &done, &r.UpdatedAt, &r.ClientRef, &r.CostMicros, &r.Currency)
	if err != nil {
		return smsgw.MessageRecord{}, err
	}
	r.EntryPoint = smsgw.EntryPoint(entry)
	r.Status = smsgw.Status(status)
	if accepted.Valid {
		r.AcceptedAt = accepted.Time
	}
	if sent.Valid {
		t := sent.Time
		r.SentAt = &t
	}
	if done.Valid {
		t := done.Time
		r.DoneAt = &t
	}
	return r, nil
}

// nullTime is NULL for a nil or zero time, else the time in UTC.
func nullTime(t *time.Time) sql.NullTime {
	if t == nil || t.IsZero() {
		return sql.NullTime{}
	}
	return sql.NullTime{Time: t.UTC(), Valid: true}
}

// truncate cuts s to at most n characters.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n])
}

// MySQL error numbers the store reacts to.
const (
	erLockWaitTimeout    = 1205
	erLockDeadlock       = 1213
	erConCountError      = 1040 // too many connections
	erServerShutdown     = 1053
	erClientInteraction  = 1927 // MariaDB: connection was killed
	erServerGoingAway    = 2006 // "server has gone away" as some proxies send it
	erServerLostDuringQy = 2013
)

func retryable(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && (me.Number == erLockDeadlock || me.Number == erLockWaitTimeout)
}

// wrap marks errors that mean the server cannot be reached, so that callers
// answer "try again later" instead of failing the request.
func wrap(err error) error {
	if unreachable(err) {
		return smsgw.Unavailable(what, err)
	}
	return err
}

func unreachable(err error) bool {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		switch me.Number {
		case erConCountError, erServerShutdown, erClientInteraction, erServerGoingAway, erServerLostDuringQy:
			return true
		}
		return false
	}
	var ne net.Error
	return errors.Is(err, driver.ErrBadConn) ||
		errors.Is(err, mysql.ErrInvalidConn) ||
		errors.Is(err, context.DeadlineExceeded) ||
		errors.As(err, &ne)
}
