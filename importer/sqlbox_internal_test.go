package importer

import (
	"net/url"
	"testing"
)

func TestDecodeTextAsSQLBoxStoresIt(t *testing.T) {
	for _, c := range []struct {
		name, msgdata, charset string
		coding                 int64
		want                   string
		ucs2                   bool
		refuse                 string
	}{
		{"gsm text, spaces as +", "Hello+world%21", "", 0, "Hello world!", false, ""},
		{"utf-8", url.QueryEscape("Café crème — £5"), "UTF-8", 0, "Café crème — £5", false, ""},
		{"latin-1 bytes", "Ol%E1%2C+at%E9+j%E1", "ISO-8859-1", 0, "Olá, até já", false, ""},
		{"ucs-2 big endian", "%04%1F%04%40%04%38%D8%3D%DC%4B", "UTF-16BE", 2, "При👋", true, ""},
		{"ucs-2 stored as utf-8", url.QueryEscape("При"), "UTF-8", 2, "При", true, ""},
		{"binary", "%00%01%02", "", 1, "", false, ""},
		{"bad escape", "100%", "", 0, "", false, "msgdata is not URL-encoded"},
		{"odd ucs-2", "%04", "", 2, "", false, "msgdata is not UCS-2"},
	} {
		got, ucs2, refuse := decodeText(c.msgdata, c.coding, c.charset)
		if got != c.want || ucs2 != c.ucs2 || refuse != c.refuse {
			t.Errorf("%s: %q %v %q, want %q %v %q", c.name, got, ucs2, refuse, c.want, c.ucs2, c.refuse)
		}
	}
}

func TestDLRReceiptStates(t *testing.T) {
	text := func(s string) string { return url.QueryEscape(s) }
	for _, c := range []struct {
		mask          int64
		msgdata, stat string
		err           string
	}{
		{1, text("id:1 sub:001 dlvrd:001 submit date:2403050930 done date:2403050931 stat:DELIVRD err:000 text:x"), "DELIVRD", "000"},
		{2, text("id:1 sub:001 dlvrd:000 submit date:2403050930 done date:2403051030 stat:EXPIRED err:027 text:"), "EXPIRED", "027"},
		{2, text("NACK"), "UNDELIV", ""},
		{16, text("NACK/0x00000045/Submit failed"), "REJECTD", ""},
		{8, text("ACK/"), "SMSC_ACK", ""},
		{4, "", "BUFFERED", ""},
	} {
		r := dlrReceipt(row{sqlID: 7, at: 1709631000, dlrMask: c.mask, msgdata: c.msgdata})
		if r.Stat != c.stat || r.Err != c.err || r.SourceID != "00000000000000000007" {
			t.Errorf("mask %d %q: %+v, want %s err %q", c.mask, c.msgdata, r, c.stat, c.err)
		}
	}
}
