package smppserver_test

import (
	"testing"
	"time"

	"github.com/smsgw/smsgw/connectors/smppserver"
	"github.com/smsgw/smsgw/connectors/smppstatus"
	"github.com/smsgw/smsgw/connectors/smppwire"
)

func udhPart(ref byte, total, seq byte, s string) smppwire.Message {
	m := text("")
	m.ESMClass = smppwire.ESMClassUDHI
	m.ShortMessage = append([]byte{5, 0, 3, ref, total, seq}, s...)
	return m
}

func sarPart(ref uint16, total, seq byte, s string) smppwire.Message {
	m := text(s)
	m.TLVs = map[uint16][]byte{
		smppwire.TagSarMsgRefNum:     {byte(ref >> 8), byte(ref)},
		smppwire.TagSarTotalSegments: {total},
		smppwire.TagSarSegmentSeqnum: {seq},
	}
	return m
}

func TestConcatenatedSubmissionIsSubmittedWhole(t *testing.T) {
	t.Parallel()
	for name, parts := range map[string][]smppwire.Message{
		"udh": {udhPart(7, 3, 3, "three"), udhPart(7, 3, 1, "one "), udhPart(7, 3, 2, "two ")},
		"sar": {sarPart(700, 3, 2, "two "), sarPart(700, 3, 3, "three"), sarPart(700, 3, 1, "one ")},
	} {
		t.Run(name, func(t *testing.T) {
			f := start(t, smppserver.Config{}, smppserver.Deps{})
			cl := f.bound(t, smppwire.BindTransceiver, "acme", "secret")
			var answers []<-chan smppwire.Frame
			for i, p := range parts {
				if i == len(parts)-1 {
					// Nothing is answered while a part is missing.
					time.Sleep(100 * time.Millisecond)
					for _, ch := range answers {
						select {
						case r := <-ch:
							t.Fatalf("part answered %+v before the message was whole", r.Header)
						default:
						}
					}
				}
				ch, err := cl.Start(smppserver.EncodeMessage(smppwire.SubmitSM, 0, p))
				if err != nil {
					t.Fatal(err)
				}
				answers = append(answers, ch)
			}
			for _, ch := range answers {
				r := <-ch
				if r.Status != 0 || string(r.Body()) != "msg-1\x00" {
					t.Fatalf("part answered %+v %q, want msg-1", r.Header, r.Body())
				}
			}
			got := f.sub.messages()
			if len(got) != 1 || got[0].Text != "one two three" || got[0].From != "ACME" || !got[0].ReceiptRequested {
				t.Fatalf("submitted %+v", got)
			}
		})
	}
}

func TestConcatenatedSubmissionTimesOut(t *testing.T) {
	t.Parallel()
	f := start(t, smppserver.Config{ConcatTimeout: 150 * time.Millisecond}, smppserver.Deps{})
	cl := f.bound(t, smppwire.BindTransceiver, "acme", "secret")
	begin := time.Now()
	status, _, err := cl.Submit(ctxFor(t), udhPart(9, 2, 1, "half"))
	if err != nil || status != smppstatus.ESME_RSUBMITFAIL {
		t.Fatalf("lone part: %s %v, want ESME_RSUBMITFAIL", smppstatus.Name(status), err)
	}
	if d := time.Since(begin); d < 150*time.Millisecond {
		t.Fatalf("answered after %s, before the timeout", d)
	}
	// A part under the same reference with another total starts a new message.
	first, err := cl.Start(smppserver.EncodeMessage(smppwire.SubmitSM, 0, udhPart(10, 2, 1, "old ")))
	if err != nil {
		t.Fatal(err)
	}
	second, err := cl.Start(smppserver.EncodeMessage(smppwire.SubmitSM, 0, udhPart(10, 3, 1, "new ")))
	if err != nil {
		t.Fatal(err)
	}
	if r := <-first; r.Status != smppstatus.ESME_RSUBMITFAIL {
		t.Fatalf("superseded part: %s", smppstatus.Name(r.Status))
	}
	if r := <-second; r.Status != smppstatus.ESME_RSUBMITFAIL {
		t.Fatalf("incomplete new message: %s", smppstatus.Name(r.Status))
	}
	if got := f.sub.messages(); len(got) != 0 {
		t.Fatalf("submitted %+v from incomplete parts", got)
	}
}
