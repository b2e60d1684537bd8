package importer

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-sql-driver/mysql"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/segment"
)

// Kannel's DLR types, as sqlbox stores them in dlr_mask of a DLR row.
const (
	dlrSuccess     = 1  // delivered to the handset
	dlrFail        = 2  // not delivered to the handset
	dlrBuffered    = 4  // queued on the SMSC
	dlrSMSCSuccess = 8  // accepted by the SMSC
	dlrSMSCFail    = 16 // refused by the SMSC
)

// SQLBox reads the sent_sms table that Kannel's sqlbox logs every message
// into: MT rows (momt 'MT') are messages; DLR rows (momt 'DLR') are their
// delivery reports, with the DLR type in dlr_mask and the SMSC's message ID
// in foreign_id. The position of a row is its sql_id. docs/import.md has the
// mapping.
type SQLBox struct {
	db    *sql.DB
	table string
	name  string
}

var validTable = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)

// OpenSQLBox connects to the sqlbox database in dsn (go-sql-driver form) and
// reads table (sent_sms when empty). name names the source ("kannel" when
// empty).
func OpenSQLBox(ctx context.Context, dsn, table, name string) (*SQLBox, error) {
	if table == "" {
		table = "sent_sms"
	}
	if name == "" {
		name = "kannel"
	}
	if !validTable.MatchString(table) {
		return nil, fmt.Errorf("sqlbox: table name %q is not a plain identifier", table)
	}
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlbox: dsn: %w", err)
	}
	if cfg.DBName == "" {
		return nil, errors.New("sqlbox: the dsn names no database (user@tcp(host:port)/database)")
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("sqlbox: dsn: %w", err)
	}
	db := sql.OpenDB(connector)
	s := &SQLBox{db: db, table: table, name: name}
	var n int64
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+table+" WHERE sql_id < 0").Scan(&n); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlbox: read %s: %w", table, err)
	}
	return s, nil
}

// Close closes the connection pool.
func (s *SQLBox) Close() error { return s.db.Close() }

// UnindexedColumns returns the columns DLR matching looks rows up by
// (foreign_id, dlr_url) that no index of the table starts with. sqlbox
// creates none: on a large table each lookup then reads the whole table,
// so an import should have them added first (docs/import.md).
func (s *SQLBox) UnindexedColumns(ctx context.Context) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT DISTINCT column_name FROM information_schema.statistics
		WHERE table_schema = DATABASE() AND table_name = ? AND seq_in_index = 1`, s.table)
	if err != nil {
		return nil, fmt.Errorf("sqlbox: read the indexes of %s: %w", s.table, err)
	}
	defer rows.Close()
	indexed := map[string]bool{}
	for rows.Next() {
		var col string
		if err := rows.Scan(&col); err != nil {
			return nil, fmt.Errorf("sqlbox: read the indexes of %s: %w", s.table, err)
		}
		indexed[strings.ToLower(col)] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlbox: read the indexes of %s: %w", s.table, err)
	}
	var missing []string
	for _, col := range []string{"foreign_id", "dlr_url"} {
		if !indexed[col] {
			missing = append(missing, col)
		}
	}
	return missing, nil
}

// Table is the table the source reads.
func (s *SQLBox) Table() string { return s.table }

// Name implements Source.
func (s *SQLBox) Name() string { return s.name }

// Remaining implements Source.
func (s *SQLBox) Remaining(ctx context.Context, after int64) (int64, error) {
	var n int64
	err := s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+s.table+" WHERE sql_id > ?", after).Scan(&n)
	return n, err
}

// row is one row of sent_sms, as far as the import reads it.
type row struct {
	sqlID                                     int64
	momt                                      string
	sender, receiver, msgdata                 string
	at                                        int64
	smscID, service, account, charset, dlrURL string
	foreignID                                 string
	coding, dlrMask                           int64
	hasTime                                   bool
}

const rowColumns = `sql_id, COALESCE(momt, ''), COALESCE(sender, ''), COALESCE(receiver, ''), COALESCE(msgdata, ''),
	time, COALESCE(smsc_id, ''), COALESCE(service, ''), COALESCE(account, ''), COALESCE(charset, ''),
	COALESCE(dlr_url, ''), COALESCE(foreign_id, ''), COALESCE(coding, 0), COALESCE(dlr_mask, 0)`

func (s *SQLBox) query(ctx context.Context, where string, args ...any) ([]row, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT "+rowColumns+" FROM "+s.table+" WHERE "+where, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []row
	for rows.Next() {
		var r row
		var at sql.NullString // a BIGINT in sqlbox's schema, VARCHAR in some older ones
		if err := rows.Scan(&r.sqlID, &r.momt, &r.sender, &r.receiver, &r.msgdata, &at, &r.smscID, &r.service,
			&r.account, &r.charset, &r.dlrURL, &r.foreignID, &r.coding, &r.dlrMask); err != nil {
			return nil, err
		}
		if at.Valid {
			if v, err := strconv.ParseInt(strings.TrimSpace(at.String), 10, 64); err == nil && v > 0 {
				r.at, r.hasTime = v, true
			}
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// Next implements Source: MT rows with the DLR rows that belong to them,
// DLR rows as an update of their MT's message, MO rows skipped.
func (s *SQLBox) Next(ctx context.Context, after int64, n int) ([]Item, error) {
	rows, err := s.query(ctx, "sql_id > ? ORDER BY sql_id LIMIT ?", after, n)
	if err != nil {
		return nil, err
	}
	items := make([]Item, 0, len(rows))
	for _, r := range rows {
		it := Item{Pos: r.sqlID}
		switch strings.ToUpper(r.momt) {
		case "MT":
			it.Message, it.Refuse, err = s.message(ctx, r)
		case "DLR":
			var mt *row
			mt, err = s.mtOf(ctx, r)
			switch {
			case err != nil:
			case mt == nil:
				it.Skip = "DLR matches no MT"
			default:
				it.Update = true
				it.Message, it.Refuse, err = s.message(ctx, *mt)
			}
		case "MO":
			it.Skip = "MO message (only sent messages are imported)"
		default:
			it.Refuse = fmt.Sprintf("unknown momt %q", r.momt)
		}
		if err != nil {
			return nil, fmt.Errorf("sql_id %d: %w", r.sqlID, err)
		}
		items = append(items, it)
	}
	return items, nil
}

// mtOf finds the MT row a DLR row reports on: the one with the same
// foreign_id (the SMSC's message ID), or else the last one before it with
// the same dlr_url and receiver (Kannel copies the MT's dlr_url into its
// DLRs). Nil when there is none.
func (s *SQLBox) mtOf(ctx context.Context, dlr row) (*row, error) {
	rows, err := s.query(ctx, `momt = 'MT' AND sql_id < ? AND (
			(? <> '' AND foreign_id = ?) OR (? <> '' AND dlr_url = ? AND receiver = ?))
		ORDER BY (? <> '' AND foreign_id = ?) DESC, sql_id DESC LIMIT 1`,
		dlr.sqlID, dlr.foreignID, dlr.foreignID, dlr.dlrURL, dlr.dlrURL, dlr.receiver, dlr.foreignID, dlr.foreignID)
	if err != nil || len(rows) == 0 {
		return nil, err
	}
	return &rows[0], nil
}

// dlrsOf returns the DLR rows that report on an MT row, in sql_id order:
// those mtOf would match to it.
func (s *SQLBox) dlrsOf(ctx context.Context, mt row) ([]row, error) {
	cands, err := s.query(ctx, `momt = 'DLR' AND sql_id > ? AND (
			(? <> '' AND foreign_id = ?) OR (? <> '' AND dlr_url = ? AND receiver = ?))
		ORDER BY sql_id`,
		mt.sqlID, mt.foreignID, mt.foreignID, mt.dlrURL, mt.dlrURL, mt.receiver)
	if err != nil {
		return nil, err
	}
	var out []row
	for _, d := range cands {
		if mt.foreignID != "" && d.foreignID == mt.foreignID {
			out = append(out, d)
			continue
		}
		// Matched by dlr_url: it is ours unless a later MT shares it.
		owner, err := s.mtOf(ctx, d)
		if err != nil {
			return nil, err
		}
		if owner != nil && owner.sqlID == mt.sqlID {
			out = append(out, d)
		}
	}
	return out, nil
}

// message makes the Message of an MT row with its DLRs, or says why it
// cannot be imported.
func (s *SQLBox) message(ctx context.Context, mt row) (*Message, string, error) {
	if !mt.hasTime {
		return nil, "MT without a time", nil
	}
	text, ucs2, refuse := decodeText(mt.msgdata, mt.coding, mt.charset)
	if refuse != "" {
		return nil, refuse, nil
	}
	dlrs, err := s.dlrsOf(ctx, mt)
	if err != nil {
		return nil, "", err
	}
	account := mt.account
	if account == "" {
		account = mt.service // the sendsms user, where no account was given
	}
	m := &Message{
		SourceID: strconv.FormatInt(mt.sqlID, 10), Account: account,
		From: mt.sender, To: mt.receiver, Text: text, UCS2: ucs2,
		SubmittedAt: time.Unix(mt.at, 0).UTC(), Connector: mt.smscID, UpstreamID: mt.foreignID,
	}
	for _, d := range dlrs {
		if m.UpstreamID == "" {
			m.UpstreamID = d.foreignID
		}
		if m.Connector == "" {
			m.Connector = d.smscID
		}
		m.Receipts = append(m.Receipts, dlrReceipt(d))
	}
	return m, "", nil
}

// dlrReceipt reads a DLR row: its type from dlr_mask, the state word, error
// and done date from the receipt text in msgdata when the SMSC sent one.
func dlrReceipt(d row) Receipt {
	r := Receipt{SourceID: fmt.Sprintf("%020d", d.sqlID), At: time.Unix(d.at, 0).UTC()}
	var parsed smsgw.ReceiptText
	if raw, err := url.QueryUnescape(d.msgdata); err == nil {
		parsed, _ = smsgw.ParseReceiptText(raw)
	}
	r.Err = parsed.Err
	switch {
	case d.dlrMask&dlrSuccess != 0:
		r.Stat = "DELIVRD"
	case d.dlrMask&dlrFail != 0:
		r.Stat = "UNDELIV"
		if st, final := (smsgw.Receipt{Stat: parsed.Stat}).Status(); final && st != smsgw.StatusDelivered {
			r.Stat = parsed.Stat
		}
	case d.dlrMask&dlrSMSCFail != 0:
		r.Stat = "REJECTD"
	case d.dlrMask&dlrSMSCSuccess != 0:
		r.Stat = "SMSC_ACK"
	case d.dlrMask&dlrBuffered != 0:
		r.Stat = "BUFFERED"
	default:
		r.Stat = "UNKNOWN"
	}
	if !parsed.DoneDate.IsZero() && (r.Stat == "DELIVRD" || r.Stat == "UNDELIV" || r.Stat == "EXPIRED" || r.Stat == "REJECTD" || r.Stat == "DELETED") {
		r.At = parsed.DoneDate.UTC()
	}
	return r
}

// decodeText reads msgdata: URL-encoded as sqlbox stores it, in UCS-2 (big
// endian) when coding is 2, else UTF-8 or, when that is not valid, the
// row's charset read as ISO-8859-1/Windows-1252. Binary (8-bit) messages
// have no text.
func decodeText(msgdata string, coding int64, charset string) (text string, ucs2 bool, refuse string) {
	raw, err := url.QueryUnescape(msgdata)
	if err != nil {
		return "", false, "msgdata is not URL-encoded"
	}
	switch coding {
	case 1:
		return "", false, ""
	case 2:
		if strings.EqualFold(charset, "UTF-8") && utf8.ValidString(raw) {
			return raw, true, ""
		}
		t, err := segment.DecodeUCS2([]byte(raw))
		if err != nil {
			return "", false, "msgdata is not UCS-2"
		}
		return t, true, ""
	}
	if utf8.ValidString(raw) {
		return raw, false, ""
	}
	runes := make([]rune, len(raw))
	for i := 0; i < len(raw); i++ {
		runes[i] = rune(raw[i]) // ISO-8859-1 maps byte to code point
	}
	return string(runes), false, ""
}
