package upstream

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"go.temporal.io/sdk/temporal"

	"github.com/smsgw/smsgw/activities"
	"github.com/smsgw/smsgw/config"
	"github.com/smsgw/smsgw/connectors/smppclient"
	"github.com/smsgw/smsgw/connectors/smppstatus"
)

// Every command_status the table knows, refused in a submit_sm_resp, becomes
// the activity error its classification says, entry by entry.
func TestClassifyEveryCommandStatus(t *testing.T) {
	s := &Sender{Connector: config.Connector{ID: "up"}}
	for _, e := range smppstatus.Table {
		if e.Code == smppstatus.ESME_ROK {
			continue
		}
		t.Run(e.Name, func(t *testing.T) {
			err := s.classify(&smppclient.SubmitError{Status: e.Code, Retryable: smppstatus.Retryable(e.Code)}, 1, 1, false)
			var ae *temporal.ApplicationError
			if !errors.As(err, &ae) {
				t.Fatalf("%v is no ApplicationError", err)
			}
			want, retryable := activities.ErrTypeSubmitRejected, false
			if e.Retryable {
				want, retryable = activities.ErrTypeSubmitRetry, true
			}
			var detail activities.SendFailure
			if ae.Type() != want || ae.NonRetryable() == retryable || ae.Details(&detail) != nil || detail.CommandStatus != e.Code || detail.StatusName != e.Name {
				t.Errorf("%s: type %s, non-retryable %v, detail %+v; want %s", e.Name, ae.Type(), ae.NonRetryable(), detail, want)
			}
			if !strings.Contains(ae.Message(), e.Name) {
				t.Errorf("message %q does not name %s", ae.Message(), e.Name)
			}
		})
	}
}

// The statuses the gateway depends on, stated outright.
func TestClassifyKeyStatuses(t *testing.T) {
	s := &Sender{Connector: config.Connector{ID: "up"}}
	for code, want := range map[uint32]string{
		smppstatus.ESME_RTHROTTLED: activities.ErrTypeSubmitRetry,
		smppstatus.ESME_RMSGQFUL:   activities.ErrTypeSubmitRetry,
		smppstatus.ESME_RSYSERR:    activities.ErrTypeSubmitRetry,
		smppstatus.ESME_RINVDSTADR: activities.ErrTypeSubmitRejected,
		smppstatus.ESME_RINVSRCADR: activities.ErrTypeSubmitRejected,
		0x00000401:                 activities.ErrTypeSubmitRejected, // vendor-specific, unknown
	} {
		err := s.classify(&smppclient.SubmitError{Status: code, Retryable: smppstatus.Retryable(code)}, 1, 1, false)
		if ae := appErr(err); ae == nil || ae.Type() != want || ae.NonRetryable() != (want == activities.ErrTypeSubmitRejected) {
			t.Errorf("%s: %v, want %s", smppstatus.Name(code), err, want)
		}
	}
}

func TestClassifyReroute(t *testing.T) {
	s := &Sender{Connector: config.Connector{ID: "up", RerouteErrors: []string{"ESME_RTHROTTLED", "0x0B", "err:034"}}}
	for _, code := range []uint32{smppstatus.ESME_RTHROTTLED, smppstatus.ESME_RINVDSTADR} {
		err := s.classify(&smppclient.SubmitError{Status: code, Retryable: smppstatus.Retryable(code)}, 2, 3, false)
		ae := appErr(err)
		if ae == nil || ae.Type() != "Reroute" || !ae.NonRetryable() || !strings.Contains(ae.Message(), "part 2 of 3 via up") {
			t.Errorf("%s: %v", smppstatus.Name(code), err)
		}
	}
	err := s.classify(&smppclient.SubmitError{Status: smppstatus.ESME_RINVSRCADR}, 1, 1, false)
	if ae := appErr(err); ae == nil || ae.Type() != activities.ErrTypeSubmitRejected {
		t.Errorf("a status not listed: %v", err)
	}
}

// Every error after which upstream may have the part follows the policy.
func TestClassifyInDoubt(t *testing.T) {
	inDoubt := []error{
		smppclient.ErrResponseTimeout,
		fmt.Errorf("%w: reading: EOF", smppclient.ErrConnectionLost),
		fmt.Errorf("smppclient: stopped waiting for the response: %w: %w", context.Canceled, smppclient.ErrInDoubt),
	}
	for _, policy := range []string{"", config.InDoubtFail, config.InDoubtResubmit} {
		s := &Sender{Connector: config.Connector{ID: "up", InDoubt: policy}}
		for _, cause := range inDoubt {
			ae := appErr(s.classify(cause, 1, 2, false))
			resubmit := policy == config.InDoubtResubmit
			switch {
			case ae == nil:
				t.Errorf("policy %q, %v: no ApplicationError", policy, cause)
			case resubmit && (ae.Type() != activities.ErrTypeSubmitRetry || ae.NonRetryable() || !strings.Contains(ae.Message(), "inDoubt policy resubmit: sending it again")):
				t.Errorf("policy %q, %v: %s %v", policy, cause, ae.Type(), ae)
			case !resubmit && (ae.Type() != activities.ErrTypeInDoubt || !ae.NonRetryable() || !strings.Contains(ae.Message(), "inDoubt policy fail: not sent again")):
				t.Errorf("policy %q, %v: %s %v", policy, cause, ae.Type(), ae)
			}
			if ae != nil && !errors.Is(ae, smppclient.ErrInDoubt) {
				t.Errorf("policy %q: the cause is lost: %v", policy, ae)
			}
		}
	}
	// Nothing was sent: not in doubt.
	s := &Sender{Connector: config.Connector{ID: "up"}}
	if ae := appErr(s.classify(fmt.Errorf("%w: connector up", smppclient.ErrNotBound), 1, 1, false)); ae == nil || ae.Type() != activities.ErrTypeNotBound || ae.NonRetryable() {
		t.Errorf("not bound: %v", ae)
	}
	if err := s.classify(context.DeadlineExceeded, 1, 1, false); appErr(err) != nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a context ended before sending: %v", err)
	}
}

func appErr(err error) *temporal.ApplicationError {
	var ae *temporal.ApplicationError
	if errors.As(err, &ae) {
		return ae
	}
	return nil
}

func TestAddressOf(t *testing.T) {
	for _, tt := range []struct {
		in     string
		source bool
		want   address
	}{
		{"+61412345678", false, address{1, 1, "61412345678"}},
		{"+61412345678", true, address{1, 1, "61412345678"}},
		{"61412345678", false, address{1, 1, "61412345678"}},
		{"12345", true, address{3, 0, "12345"}},
		{"ACME", true, address{5, 0, "ACME"}},
		{"+1234", false, address{1, 1, "1234"}},
	} {
		if got := addressOf(tt.in, tt.source); got != tt.want {
			t.Errorf("addressOf(%q, %v) = %+v, want %+v", tt.in, tt.source, got, tt.want)
		}
	}
}
