package smppstatus_test

import (
	"testing"

	"github.com/smsgw/smsgw/connectors/smppstatus"
)

// want is written out independently of Table, so a wrong code, name or
// classification in the table fails here.
var want = []struct {
	code      uint32
	name      string
	retryable bool
}{
	{0x00, "ESME_ROK", false},
	{0x01, "ESME_RINVMSGLEN", false},
	{0x02, "ESME_RINVCMDLEN", false},
	{0x03, "ESME_RINVCMDID", false},
	{0x04, "ESME_RINVBNDSTS", true},
	{0x05, "ESME_RALYBND", false},
	{0x06, "ESME_RINVPRTFLG", false},
	{0x07, "ESME_RINVREGDLVFLG", false},
	{0x08, "ESME_RSYSERR", true},
	{0x0A, "ESME_RINVSRCADR", false},
	{0x0B, "ESME_RINVDSTADR", false},
	{0x0C, "ESME_RINVMSGID", false},
	{0x0D, "ESME_RBINDFAIL", false},
	{0x0E, "ESME_RINVPASWD", false},
	{0x0F, "ESME_RINVSYSID", false},
	{0x11, "ESME_RCANCELFAIL", false},
	{0x13, "ESME_RREPLACEFAIL", false},
	{0x14, "ESME_RMSGQFUL", true},
	{0x15, "ESME_RINVSERTYP", false},
	{0x33, "ESME_RINVNUMDESTS", false},
	{0x34, "ESME_RINVDLNAME", false},
	{0x40, "ESME_RINVDESTFLAG", false},
	{0x42, "ESME_RINVSUBREP", false},
	{0x43, "ESME_RINVESMCLASS", false},
	{0x44, "ESME_RCNTSUBDL", false},
	{0x45, "ESME_RSUBMITFAIL", false},
	{0x48, "ESME_RINVSRCTON", false},
	{0x49, "ESME_RINVSRCNPI", false},
	{0x50, "ESME_RINVDSTTON", false},
	{0x51, "ESME_RINVDSTNPI", false},
	{0x53, "ESME_RINVSYSTYP", false},
	{0x54, "ESME_RINVREPFLAG", false},
	{0x55, "ESME_RINVNUMMSGS", false},
	{0x58, "ESME_RTHROTTLED", true},
	{0x61, "ESME_RINVSCHED", false},
	{0x62, "ESME_RINVEXPIRY", false},
	{0x63, "ESME_RINVDFTMSGID", false},
	{0x64, "ESME_RX_T_APPN", true},
	{0x65, "ESME_RX_P_APPN", false},
	{0x66, "ESME_RX_R_APPN", false},
	{0x67, "ESME_RQUERYFAIL", false},
	{0xC0, "ESME_RINVOPTPARSTREAM", false},
	{0xC1, "ESME_ROPTPARNOTALLWD", false},
	{0xC2, "ESME_RINVPARLEN", false},
	{0xC3, "ESME_RMISSINGOPTPARAM", false},
	{0xC4, "ESME_RINVOPTPARAMVAL", false},
	{0xFE, "ESME_RDELIVERYFAILURE", false},
	{0xFF, "ESME_RUNKNOWNERR", false},
	{0x100, "ESME_RSERTYPUNAUTH", false},
	{0x101, "ESME_RPROHIBITED", false},
	{0x102, "ESME_RSERTYPUNAVAIL", true},
	{0x103, "ESME_RSERTYPDENIED", false},
	{0x104, "ESME_RINVDCS", false},
	{0x105, "ESME_RINVSRCADDRSUB", false},
	{0x106, "ESME_RINVDSTADDRSUB", false},
}

func TestEveryEntry(t *testing.T) {
	if len(smppstatus.Table) != len(want) {
		t.Errorf("Table has %d entries, the test expects %d", len(smppstatus.Table), len(want))
	}
	for _, w := range want {
		t.Run(w.name, func(t *testing.T) {
			if got := smppstatus.Name(w.code); got != w.name {
				t.Errorf("Name(0x%X) = %q, want %q", w.code, got, w.name)
			}
			if got := smppstatus.Retryable(w.code); got != w.retryable {
				t.Errorf("Retryable(%s) = %v, want %v", w.name, got, w.retryable)
			}
			e, ok := smppstatus.Lookup(w.code)
			if !ok || e.Code != w.code || e.Description == "" {
				t.Errorf("Lookup(0x%X) = %+v, %v", w.code, e, ok)
			}
		})
	}
}

func TestNamedConstants(t *testing.T) {
	for code, name := range map[uint32]string{
		smppstatus.ESME_RTHROTTLED: "ESME_RTHROTTLED",
		smppstatus.ESME_RMSGQFUL:   "ESME_RMSGQFUL",
		smppstatus.ESME_RSYSERR:    "ESME_RSYSERR",
		smppstatus.ESME_RINVDSTADR: "ESME_RINVDSTADR",
		smppstatus.ESME_RINVSRCADR: "ESME_RINVSRCADR",
		smppstatus.ESME_RINVDCS:    "ESME_RINVDCS",
		smppstatus.ESME_RX_T_APPN:  "ESME_RX_T_APPN",
	} {
		if got := smppstatus.Name(code); got != name {
			t.Errorf("constant %s has code 0x%X named %q", name, code, got)
		}
	}
}

func TestTableIsOrderedAndUnique(t *testing.T) {
	names := map[string]bool{}
	for i, e := range smppstatus.Table {
		if i > 0 && e.Code <= smppstatus.Table[i-1].Code {
			t.Errorf("entry %s (0x%X) is out of order", e.Name, e.Code)
		}
		if names[e.Name] {
			t.Errorf("name %s appears twice", e.Name)
		}
		names[e.Name] = true
	}
}

func TestUnknownCode(t *testing.T) {
	const vendor = 0x00000401
	if got := smppstatus.Name(vendor); got != "0x00000401" {
		t.Errorf("Name(vendor code) = %q", got)
	}
	if smppstatus.Retryable(vendor) {
		t.Error("an unknown code must be permanent")
	}
	if _, ok := smppstatus.Lookup(vendor); ok {
		t.Error("Lookup found an unknown code")
	}
	if got := smppstatus.Describe(vendor); got != "0x00000401 (unknown command_status)" {
		t.Errorf("Describe(vendor code) = %q", got)
	}
	if got := smppstatus.Describe(smppstatus.ESME_RTHROTTLED); got != "ESME_RTHROTTLED (throttling error: the ESME exceeded its allowed message rate)" {
		t.Errorf("Describe(ESME_RTHROTTLED) = %q", got)
	}
}
