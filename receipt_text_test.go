package smsgw

import (
	"strings"
	"testing"
	"time"
)

func TestParseReceiptText(t *testing.T) {
	date := func(s string) time.Time {
		t.Helper()
		v, err := time.Parse("2006-01-02 15:04:05", s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		name string
		in   string
		want ReceiptText
	}{
		{
			name: "standard form",
			in:   "id:0123456789 sub:001 dlvrd:001 submit date:2311261305 done date:2311261306 stat:DELIVRD err:000 text:Hello world",
			want: ReceiptText{ID: "0123456789", Sub: "001", Dlvrd: "001", SubmitDate: date("2023-11-26 13:05:00"),
				DoneDate: date("2023-11-26 13:06:00"), Stat: "DELIVRD", Err: "000", Text: "Hello world"},
		},
		{
			name: "keys in any case",
			in:   "ID:abc SUB:001 DLVRD:000 Submit Date:2311261305 Done Date:2311261306 STAT:undeliv ERR:001 Text:x",
			want: ReceiptText{ID: "abc", Sub: "001", Dlvrd: "000", SubmitDate: date("2023-11-26 13:05:00"),
				DoneDate: date("2023-11-26 13:06:00"), Stat: "UNDELIV", Err: "001", Text: "x"},
		},
		{
			name: "no sub, dlvrd or text",
			in:   "id:77 submit date:2311261305 done date:2311261306 stat:EXPIRED err:000",
			want: ReceiptText{ID: "77", SubmitDate: date("2023-11-26 13:05:00"), DoneDate: date("2023-11-26 13:06:00"),
				Stat: "EXPIRED", Err: "000"},
		},
		{
			name: "underscored date keys with seconds",
			in:   "id:77 sub:1 dlvrd:1 submit_date:231126130501 done_date:231126130659 stat:DELIVRD err:0",
			want: ReceiptText{ID: "77", Sub: "1", Dlvrd: "1", SubmitDate: date("2023-11-26 13:05:01"),
				DoneDate: date("2023-11-26 13:06:59"), Stat: "DELIVRD", Err: "000"},
		},
		{
			name: "four-digit years",
			in:   "id:77 submit date:20231126130501 done date:20231126130659 stat:DELIVRD err:000",
			want: ReceiptText{ID: "77", SubmitDate: date("2023-11-26 13:05:01"), DoneDate: date("2023-11-26 13:06:59"),
				Stat: "DELIVRD", Err: "000"},
		},
		{
			name: "unreadable dates are left zero",
			in:   "id:77 submit date:2313261305 done date:soon stat:DELIVRD err:000",
			want: ReceiptText{ID: "77", Stat: "DELIVRD", Err: "000"},
		},
		{
			name: "long state words are folded",
			in:   "id:1 stat:DELIVERED err:000",
			want: ReceiptText{ID: "1", Stat: "DELIVRD", Err: "000"},
		},
		{
			name: "keys in another order, extra spaces",
			in:   "  stat:REJECTD   err:034  id:  A1B2  ",
			want: ReceiptText{ID: "A1B2", Stat: "REJECTD", Err: "034"},
		},
		{
			name: "text that looks like keys stays text",
			in:   "id:1 stat:DELIVRD err:000 text:stat:UNDELIV id:2",
			want: ReceiptText{ID: "1", Stat: "DELIVRD", Err: "000", Text: "stat:UNDELIV id:2"},
		},
		{
			name: "keys inside words do not count",
			in:   "id:1 stat:ACCEPTD err:000 hid:9 substat:x",
			want: ReceiptText{ID: "1", Stat: "ACCEPTD", Err: "000"},
		},
		{
			name: "trailing NUL",
			in:   "id:5 stat:ENROUTE err:000\x00",
			want: ReceiptText{ID: "5", Stat: "ENROUTE", Err: "000"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseReceiptText(tt.in)
			if err != nil {
				t.Fatalf("ParseReceiptText: %v", err)
			}
			if got != tt.want {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParseReceiptTextErrors(t *testing.T) {
	for _, in := range []string{
		"",
		"hello",
		"stat:DELIVRD err:000",
		"id:123 err:000",
		"id: stat:DELIVRD",
		"xid:1 xstat:DELIVRD",
		"text:id:1 stat:DELIVRD",
	} {
		_, err := ParseReceiptText(in)
		if err == nil {
			t.Errorf("ParseReceiptText(%q) succeeded", in)
			continue
		}
		if ErrorCode(err) != EINVALID {
			t.Errorf("ParseReceiptText(%q) error code = %q", in, ErrorCode(err))
		}
	}
}

func TestReceiptTextString(t *testing.T) {
	// fixed date: ReceiptText only formats and parses dates; nothing here reads the clock
	submitted := time.Date(2023, 11, 26, 13, 5, 0, 0, time.UTC)
	r := ReceiptText{ID: "a1f", SubmitDate: submitted, DoneDate: submitted.Add(time.Minute), Stat: "DELIVRD", Err: "000", Text: "Hello"}
	want := "id:a1f sub:001 dlvrd:001 submit date:2311261305 done date:2311261306 stat:DELIVRD err:000 text:Hello"
	if got := r.String(); got != want {
		t.Fatalf("String() = %q, want %q", got, want)
	}
	back, err := ParseReceiptText(r.String())
	if err != nil {
		t.Fatal(err)
	}
	r.Sub, r.Dlvrd = "001", "001"
	if back != r {
		t.Errorf("round trip: got %+v, want %+v", back, r)
	}
}

func TestNormalizeUpstreamID(t *testing.T) {
	tests := []struct{ id, format, want string }{
		{" 0000A1F ", "hex", "a1f"},
		{"0x00A1F", "hex", "a1f"},
		{"a1f", "hex", "a1f"},
		{"0000", "hex", "0"},
		{"2591", "decimal", "a1f"},
		{"0002591", "decimal", "a1f"},
		{"0", "decimal", "0"},
		{"18446744073709551616", "decimal", "10000000000000000"}, // 2^64 does not fit a uint64
		{" 0000A1F\x00", "", "0000A1F"},
		{"msg-42", "hex", "msg-42"}, // not hex: kept as written
		{"12ab", "decimal", "12ab"}, // not decimal: kept as written
		{"", "hex", ""},             // empty stays empty
		{"ABCDEF", "", "ABCDEF"},    // as is keeps case
		{"  ", "decimal", ""},       // only spaces
		{"0xZZ", "hex", "0xZZ"},     // prefix without digits
		{"12345678901234567890123456789012345678901234567890123456789012345", "decimal",
			"12345678901234567890123456789012345678901234567890123456789012345"}, // longer than SMPP allows
	}
	for _, tt := range tests {
		if got := NormalizeUpstreamID(tt.id, tt.format); got != tt.want {
			t.Errorf("NormalizeUpstreamID(%q, %q) = %q, want %q", tt.id, tt.format, got, tt.want)
		}
	}
}

// An SMSC answering submit_sm_resp in hex and writing receipts in decimal:
// both sides meet in one canonical form.
func TestNormalizeUpstreamIDAcrossNotations(t *testing.T) {
	for n := uint64(0); n < 5000; n += 37 {
		hexID := strings.ToUpper(strings.Repeat("0", 3) + big10to16(n))
		decID := "00" + itoa(n)
		if a, b := NormalizeUpstreamID(hexID, "hex"), NormalizeUpstreamID(decID, "decimal"); a != b {
			t.Fatalf("hex %q → %q but decimal %q → %q", hexID, a, decID, b)
		}
	}
}

func TestCheckUpstreamIDFormat(t *testing.T) {
	for _, f := range []string{"", "hex", "decimal"} {
		if err := CheckUpstreamIDFormat(f); err != nil {
			t.Errorf("CheckUpstreamIDFormat(%q) = %v", f, err)
		}
	}
	if err := CheckUpstreamIDFormat("HEX"); ErrorCode(err) != EINVALID {
		t.Errorf("CheckUpstreamIDFormat(HEX) = %v", err)
	}
}

func big10to16(n uint64) string {
	const digits = "0123456789abcdef"
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 16 {
		b = append([]byte{digits[n%16]}, b...)
	}
	return string(b)
}

func itoa(n uint64) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

func FuzzParseReceiptText(f *testing.F) {
	f.Add("id:0123456789 sub:001 dlvrd:001 submit date:2311261305 done date:2311261306 stat:DELIVRD err:000 text:Hello")
	f.Add("ID:abc Submit_Date:231126130501 stat:undeliv err:1")
	f.Add("stat:REJECTD id:9 text:id:1 stat:x")
	f.Add("id:\x00 stat:\xff")
	f.Fuzz(func(t *testing.T, in string) {
		r, err := ParseReceiptText(in)
		if err != nil {
			if ErrorCode(err) != EINVALID {
				t.Fatalf("error with code %q: %v", ErrorCode(err), err)
			}
			return
		}
		if r.ID == "" || r.Stat == "" {
			t.Fatalf("parsed without id or stat: %+v", r)
		}
		if strings.ContainsAny(r.ID, " \t\r\n\x00") {
			t.Fatalf("id %q contains white space", r.ID)
		}
		for _, d := range []time.Time{r.SubmitDate, r.DoneDate} {
			if !d.IsZero() && d.Location() != time.UTC {
				t.Fatalf("date %v is not UTC", d)
			}
		}
		// What was parsed survives formatting and parsing again, unless the
		// values themselves contain text that reads as keys.
		back, err := ParseReceiptText(r.String())
		if err != nil {
			t.Fatalf("re-parsing %q: %v", r.String(), err)
		}
		if back.ID != r.ID && !strings.Contains(r.ID, ":") {
			t.Fatalf("id %q became %q", r.ID, back.ID)
		}
		_ = NormalizeUpstreamID(r.ID, UpstreamIDHex)
		_ = NormalizeUpstreamID(r.ID, UpstreamIDDecimal)
	})
}

func TestNormalizeReceiptErr(t *testing.T) {
	for in, want := range map[string]string{"34": "034", "034": "034", "0": "000", "1234": "1234", " 7 ": "007", "ABC": "abc", "": ""} {
		if got := NormalizeReceiptErr(in); got != want {
			t.Errorf("NormalizeReceiptErr(%q) = %q, want %q", in, got, want)
		}
	}
}
