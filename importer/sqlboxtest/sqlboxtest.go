// Package sqlboxtest makes Kannel sqlbox data for tests: the sent_sms table
// as sqlbox creates it in MySQL, and rows as sqlbox logs them (msgdata
// URL-encoded, UCS-2 bytes for coding 2, times in Unix seconds, DLR rows
// with the DLR type in dlr_mask, the SMSC's message ID in foreign_id and
// the MT's dlr_url).
package sqlboxtest

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode/utf16"
)

// Schema is sqlbox's MySQL log table (sent_sms).
const Schema = `CREATE TABLE IF NOT EXISTS sent_sms (
  sql_id BIGINT(20) NOT NULL AUTO_INCREMENT PRIMARY KEY,
  momt ENUM('MO', 'MT', 'DLR') NULL,
  sender VARCHAR(20) NULL,
  receiver VARCHAR(20) NULL,
  udhdata BLOB NULL,
  msgdata TEXT NULL,
  time BIGINT(20) NULL,
  smsc_id VARCHAR(255) NULL,
  service VARCHAR(255) NULL,
  account VARCHAR(255) NULL,
  id BIGINT(20) NULL,
  sms_type BIGINT(20) NULL,
  mclass BIGINT(20) NULL,
  mwi BIGINT(20) NULL,
  coding BIGINT(20) NULL,
  compress BIGINT(20) NULL,
  validity BIGINT(20) NULL,
  deferred BIGINT(20) NULL,
  dlr_mask BIGINT(20) NULL,
  dlr_url VARCHAR(255) NULL,
  pid BIGINT(20) NULL,
  alt_dcs BIGINT(20) NULL,
  rpi BIGINT(20) NULL,
  charset VARCHAR(255) NULL,
  boxc_id VARCHAR(255) NULL,
  binfo VARCHAR(255) NULL,
  meta_data TEXT NULL,
  foreign_id VARCHAR(255) NULL
)`

// Row is one sent_sms row. Text is the message as the handset shows it;
// Insert encodes it as sqlbox stores it.
type Row struct {
	SQLID     int64
	MOMT      string // MT, DLR or MO
	Sender    string
	Receiver  string
	Text      string
	Time      time.Time
	SMSC      string
	Service   string
	Account   string // "" stores NULL
	Coding    int64  // 0 GSM/text, 1 8-bit, 2 UCS-2
	Charset   string
	DLRMask   int64
	DLRURL    string
	ForeignID string // "" stores NULL
	Latin1    bool   // store Text's bytes in ISO-8859-1 (charset ISO-8859-1)
}

// msgdata is the row's text as sqlbox writes it.
func (r Row) msgdata() string {
	raw := r.Text
	switch {
	case r.Coding == 2:
		var b strings.Builder
		for _, u := range utf16.Encode([]rune(r.Text)) {
			b.WriteByte(byte(u >> 8))
			b.WriteByte(byte(u))
		}
		raw = b.String()
	case r.Latin1:
		bs := make([]byte, 0, len(r.Text))
		for _, c := range r.Text {
			bs = append(bs, byte(c))
		}
		raw = string(bs)
	}
	return url.QueryEscape(raw)
}

// Receipt is the text of an SMPP delivery receipt as an SMSC sends it,
// which Kannel keeps as the DLR row's msgdata.
func Receipt(id, stat, errCode string, submitted, done time.Time, text string) string {
	dlvrd := "000"
	if stat == "DELIVRD" {
		dlvrd = "001"
	}
	if len(text) > 20 {
		text = text[:20]
	}
	return fmt.Sprintf("id:%s sub:001 dlvrd:%s submit date:%s done date:%s stat:%s err:%s text:%s",
		id, dlvrd, submitted.UTC().Format("0601021504"), done.UTC().Format("0601021504"), stat, errCode, text)
}

// Insert writes rows into sent_sms.
func Insert(ctx context.Context, db *sql.DB, rows []Row) error {
	const q = `INSERT INTO sent_sms (sql_id, momt, sender, receiver, msgdata, time, smsc_id, service, account,
		sms_type, coding, charset, dlr_mask, dlr_url, foreign_id, boxc_id) VALUES `
	for start := 0; start < len(rows); start += 200 {
		chunk := rows[start:min(start+200, len(rows))]
		var vals []string
		var args []any
		for _, r := range chunk {
			vals = append(vals, "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'sqlbox')")
			smsType := 2 // mt_push
			switch r.MOMT {
			case "MO":
				smsType = 0
			case "DLR":
				smsType = 3 // report_mo
			}
			args = append(args, r.SQLID, r.MOMT, r.Sender, r.Receiver, r.msgdata(), r.Time.Unix(), r.SMSC, r.Service,
				null(r.Account), smsType, r.Coding, null(r.Charset), r.DLRMask, null(r.DLRURL), null(r.ForeignID))
		}
		if _, err := db.ExecContext(ctx, q+strings.Join(vals, ", "), args...); err != nil {
			return fmt.Errorf("sqlboxtest: insert: %w", err)
		}
	}
	return nil
}

func null(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// FixtureCase names what the fixture's rows show, by the MT's sql_id.
const (
	DeliveredMT   = 1  // MT, an SMSC ack (8), then DELIVRD (1): DELIVERED
	UnicodeMT     = 4  // UCS-2 Cyrillic and an emoji, UNDELIV (2): UNDELIVERABLE
	NoDLRMT       = 6  // UTF-8 text, no DLR asked for: SENT
	MORow         = 7  // an MO: skipped
	OrphanDLR     = 8  // a DLR of no MT: skipped
	UnknownAcctMT = 9  // account no customer maps: refused
	NationalMT    = 10 // receiver without a country code: refused
	RejectedMT    = 11 // to DeliveredMT's number again, refused by the SMSC (16): REJECTED
	Latin1MT      = 13 // ISO-8859-1 text, account NULL (service "svc"), EXPIRED: EXPIRED
	FixtureRows   = 14
)

// FixtureNumber is the handset DeliveredMT and RejectedMT went to.
const FixtureNumber = "61412345001"

// Fixture is a sent_sms log covering what an import meets: MT rows with
// DLRs of success and failure, intermediate DLRs, UCS-2 and Latin-1 text,
// an MT with no DLR, an MO, a DLR of no MT, and rows that cannot be
// imported. Accounts are "acme" and, through service, "svc".
func Fixture(t0 time.Time) []Row {
	at := func(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }
	return []Row{
		{SQLID: 1, MOMT: "MT", Sender: "ACME", Receiver: FixtureNumber, Text: "Your code is 1234", Time: at(0), SMSC: "smsc1",
			Service: "sendsms", Account: "acme", DLRMask: 31, DLRURL: "http://app.example/dlr?id=a1&type=%d", Charset: "UTF-8"},
		{SQLID: 2, MOMT: "DLR", Sender: "ACME", Receiver: FixtureNumber, Text: "ACK/", Time: at(1), SMSC: "smsc1",
			Service: "sendsms", Account: "acme", DLRMask: 8, DLRURL: "http://app.example/dlr?id=a1&type=%d", ForeignID: "5f1a0001"},
		{SQLID: 3, MOMT: "DLR", Sender: "ACME", Receiver: FixtureNumber, Time: at(7), SMSC: "smsc1", Service: "sendsms", Account: "acme",
			Text: Receipt("5f1a0001", "DELIVRD", "000", at(0), at(6), "Your code is 1234"), DLRMask: 1,
			DLRURL: "http://app.example/dlr?id=a1&type=%d", ForeignID: "5f1a0001"},
		{SQLID: 4, MOMT: "MT", Sender: "ACME", Receiver: "61412345002", Text: "Привет, мир 👋", Time: at(10), SMSC: "smsc2",
			Service: "sendsms", Account: "acme", Coding: 2, Charset: "UTF-16BE", DLRMask: 3, DLRURL: "http://app.example/dlr?id=a2&type=%d"},
		{SQLID: 5, MOMT: "DLR", Sender: "ACME", Receiver: "61412345002", Time: at(70), SMSC: "smsc2", Service: "sendsms", Account: "acme",
			Text: Receipt("77002", "UNDELIV", "001", at(10), at(60), ""), DLRMask: 2,
			DLRURL: "http://app.example/dlr?id=a2&type=%d", ForeignID: "77002"},
		{SQLID: 6, MOMT: "MT", Sender: "61400000000", Receiver: "+61412345003", Text: "Café crème — £5, merci !", Time: at(20),
			SMSC: "smsc1", Service: "sendsms", Account: "acme", Charset: "UTF-8"},
		{SQLID: 7, MOMT: "MO", Sender: "61412345003", Receiver: "61400000000", Text: "STOP", Time: at(25), SMSC: "smsc1", Service: "keyword"},
		{SQLID: 8, MOMT: "DLR", Sender: "ACME", Receiver: "61499999999", Time: at(30), SMSC: "smsc1", Service: "sendsms",
			Text: Receipt("dead01", "DELIVRD", "000", at(0), at(29), ""), DLRMask: 1, DLRURL: "http://app.example/dlr?id=gone", ForeignID: "dead01"},
		{SQLID: 9, MOMT: "MT", Sender: "ACME", Receiver: "61412345005", Text: "Hi", Time: at(40), SMSC: "smsc1", Service: "sendsms", Account: "legacy-reseller"},
		{SQLID: 10, MOMT: "MT", Sender: "ACME", Receiver: "0412345678", Text: "Hi", Time: at(41), SMSC: "smsc1", Service: "sendsms", Account: "acme"},
		{SQLID: 11, MOMT: "MT", Sender: "ACME", Receiver: FixtureNumber, Text: "Second message", Time: at(50), SMSC: "smsc1",
			Service: "sendsms", Account: "acme", DLRMask: 31, DLRURL: "http://app.example/dlr?id=a3&type=%d"},
		{SQLID: 12, MOMT: "DLR", Sender: "ACME", Receiver: FixtureNumber, Text: "NACK/0x00000045/Submit failed", Time: at(51), SMSC: "smsc1",
			Service: "sendsms", Account: "acme", DLRMask: 16, DLRURL: "http://app.example/dlr?id=a3&type=%d"},
		{SQLID: 13, MOMT: "MT", Sender: "SVC", Receiver: "61412345004", Text: "Olá, até já", Latin1: true, Charset: "ISO-8859-1",
			Time: at(60), SMSC: "smsc2", Service: "svc", DLRMask: 3, DLRURL: "http://app.example/dlr?id=a4"},
		{SQLID: 14, MOMT: "DLR", Sender: "SVC", Receiver: "61412345004", Time: at(3660), SMSC: "smsc2", Service: "svc",
			Text: Receipt("77004", "EXPIRED", "027", at(60), at(3600), ""), DLRMask: 2, DLRURL: "http://app.example/dlr?id=a4", ForeignID: "77004"},
	}
}

// Generate makes n MT rows from sql_id first on, each followed by its DLRs
// (an SMSC ack, then DELIVRD, or UNDELIV for every seventh, and none for
// every eleventh), one message a second from t0. It returns the rows and the
// number of MT rows.
func Generate(first int64, n int, t0 time.Time) []Row {
	var rows []Row
	id := first
	for i := range n {
		at := t0.Add(time.Duration(i) * time.Second)
		to := fmt.Sprintf("6149%07d", i)
		url := fmt.Sprintf("http://app.example/dlr?msg=%d", i)
		rows = append(rows, Row{SQLID: id, MOMT: "MT", Sender: "ACME", Receiver: to, Text: fmt.Sprintf("Message %d of the old gateway", i),
			Time: at, SMSC: "smsc1", Service: "sendsms", Account: "acme", DLRMask: 31, DLRURL: url, Charset: "UTF-8"})
		id++
		if i%11 == 10 {
			continue
		}
		fid := fmt.Sprintf("g%06x", i)
		rows = append(rows, Row{SQLID: id, MOMT: "DLR", Sender: "ACME", Receiver: to, Text: "ACK/", Time: at, SMSC: "smsc1",
			Service: "sendsms", Account: "acme", DLRMask: 8, DLRURL: url, ForeignID: fid})
		id++
		stat, mask := "DELIVRD", int64(1)
		if i%7 == 6 {
			stat, mask = "UNDELIV", 2
		}
		rows = append(rows, Row{SQLID: id, MOMT: "DLR", Sender: "ACME", Receiver: to, Time: at.Add(5 * time.Second), SMSC: "smsc1",
			Service: "sendsms", Account: "acme", Text: Receipt(fid, stat, "000", at, at.Add(4*time.Second), ""), DLRMask: mask, DLRURL: url, ForeignID: fid})
		id++
	}
	return rows
}
