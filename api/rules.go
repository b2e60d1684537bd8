package api

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	smsgw "github.com/smsgw/smsgw"
	smsgwv1 "github.com/smsgw/smsgw/proto/smsgw/v1"
)

// RulesDeps serve RulesService: the opt-out list and the review of held
// messages. Both are required.
//
// The review is authenticated as every other call is, with the customer's
// API key: the customer (or the operator holding its key) releases or
// rejects its own held messages.
type RulesDeps struct {
	OptOuts  smsgw.OptOutList
	Reviewer smsgw.Reviewer
	// Operators, when set, adds OperatorReviewService: the review of any
	// customer's held messages, behind the admin keys.
	Operators smsgw.OperatorReviewer
	// Held, with Operators, lists the held messages (ListHeldMessages);
	// without it the list answers UNIMPLEMENTED.
	Held smsgw.HeldLister
}

// MaxImportLines bounds an opt-out import (the request body's own bound,
// MaxBatchBodyBytes, comes first).
const MaxImportLines = 100_000

func registerRules(s *grpc.Server, d *RulesDeps) error {
	if d == nil {
		return nil
	}
	if d.OptOuts == nil || d.Reviewer == nil {
		return errors.New("api: RulesDeps needs OptOuts and Reviewer")
	}
	smsgwv1.RegisterRulesServiceServer(s, &rulesService{optOuts: d.OptOuts, reviewer: d.Reviewer})
	if d.Operators != nil {
		smsgwv1.RegisterOperatorReviewServiceServer(s, &operatorReviewService{reviewer: d.Operators, held: d.Held})
	}
	return nil
}

func registerRulesGateway(ctx context.Context, mux *runtime.ServeMux, conn grpc.ClientConnInterface, d *RulesDeps) error {
	if d == nil {
		return nil
	}
	if err := smsgwv1.RegisterRulesServiceHandlerClient(ctx, mux, smsgwv1.NewRulesServiceClient(conn)); err != nil {
		return fmt.Errorf("api: register rules REST gateway: %w", err)
	}
	if d.Operators != nil {
		if err := smsgwv1.RegisterOperatorReviewServiceHandlerClient(ctx, mux, smsgwv1.NewOperatorReviewServiceClient(conn)); err != nil {
			return fmt.Errorf("api: register operator review REST gateway: %w", err)
		}
	}
	return nil
}

// rulesService implements smsgwv1.RulesService.
type rulesService struct {
	smsgwv1.UnimplementedRulesServiceServer
	optOuts  smsgw.OptOutList
	reviewer smsgw.Reviewer
}

// optOutEntry checks a number and sender as a request gives them.
func optOutEntry(customerID, number, sender string) (smsgw.OptOut, error) {
	n, err := smsgw.NormalizeMSISDN(number)
	if err != nil {
		return smsgw.OptOut{}, smsgw.Errorf(smsgw.EINVALID, "number: %v", err)
	}
	s := ""
	if sender != "" {
		if s = smsgw.SenderDigits(sender); s == "" || len(s) > 15 {
			return smsgw.OptOut{}, smsgw.Errorf(smsgw.EINVALID, "sender %q must be a phone number (an alphanumeric sender cannot receive an opt-out)", sender)
		}
	}
	return smsgw.OptOut{CustomerID: customerID, Sender: s, Number: n}, nil
}

func optOutToProto(o smsgw.OptOut) *smsgwv1.OptOut {
	return &smsgwv1.OptOut{Number: o.Number, Sender: o.Sender, Source: o.Source, Keyword: o.Keyword, OptedOutAt: timestamp(&o.At)}
}

func (s *rulesService) ListOptOuts(ctx context.Context, req *smsgwv1.ListOptOutsRequest) (*smsgwv1.ListOptOutsResponse, error) {
	id, err := customerID(ctx)
	if err != nil {
		return nil, err
	}
	if req.GetPageSize() < 0 {
		return nil, smsgw.Errorf(smsgw.EINVALID, "pageSize must not be negative")
	}
	sender := ""
	if req.GetSender() != "" {
		if sender = smsgw.SenderDigits(req.GetSender()); sender == "" {
			return nil, smsgw.Errorf(smsgw.EINVALID, "sender %q must be a phone number", req.GetSender())
		}
	}
	list, next, err := s.optOuts.ListOptOuts(ctx, smsgw.OptOutQuery{
		CustomerID: id, Sender: sender, PageSize: int(req.GetPageSize()), PageToken: req.GetPageToken(),
	})
	if err != nil {
		return nil, err
	}
	out := &smsgwv1.ListOptOutsResponse{NextPageToken: next, OptOuts: make([]*smsgwv1.OptOut, 0, len(list))}
	for _, o := range list {
		out.OptOuts = append(out.OptOuts, optOutToProto(o))
	}
	return out, nil
}

func (s *rulesService) AddOptOut(ctx context.Context, req *smsgwv1.AddOptOutRequest) (*smsgwv1.AddOptOutResponse, error) {
	id, err := customerID(ctx)
	if err != nil {
		return nil, err
	}
	e, err := optOutEntry(id, req.GetNumber(), req.GetSender())
	if err != nil {
		return nil, err
	}
	e.Source, e.At = "api", time.Now().UTC()
	added, err := s.optOuts.AddOptOuts(ctx, []smsgw.OptOut{e})
	if err != nil {
		return nil, err
	}
	// An entry already there keeps its first source and time.
	return &smsgwv1.AddOptOutResponse{OptOut: optOutToProto(e), Added: added == 1}, nil
}

func (s *rulesService) DeleteOptOut(ctx context.Context, req *smsgwv1.DeleteOptOutRequest) (*smsgwv1.DeleteOptOutResponse, error) {
	id, err := customerID(ctx)
	if err != nil {
		return nil, err
	}
	e, err := optOutEntry(id, req.GetNumber(), req.GetSender())
	if err != nil {
		return nil, err
	}
	deleted, err := s.optOuts.RemoveOptOut(ctx, id, e.Sender, e.Number)
	if err != nil {
		return nil, err
	}
	return &smsgwv1.DeleteOptOutResponse{Deleted: deleted}, nil
}

func (s *rulesService) ImportOptOuts(ctx context.Context, req *smsgwv1.ImportOptOutsRequest) (*smsgwv1.ImportOptOutsResponse, error) {
	id, err := customerID(ctx)
	if err != nil {
		return nil, err
	}
	entries, err := ParseOptOutCSV(id, req.GetCsv())
	if err != nil {
		return nil, err
	}
	added := 0
	for start := 0; start < len(entries); start += 1000 {
		n, err := s.optOuts.AddOptOuts(ctx, entries[start:min(start+1000, len(entries))])
		if err != nil {
			return nil, err
		}
		added += n
	}
	return &smsgwv1.ImportOptOutsResponse{Total: int32(len(entries)), Added: int32(added)}, nil
}

// ParseOptOutCSV reads an opt-out file: "number" or "number,sender" per
// line, a header line naming the columns skipped, blank lines ignored.
// One bad line refuses the whole file, naming the line (EINVALID).
func ParseOptOutCSV(customerID, text string) ([]smsgw.OptOut, error) {
	r := csv.NewReader(strings.NewReader(text))
	r.FieldsPerRecord = -1
	r.TrimLeadingSpace = true
	var entries []smsgw.OptOut
	for line := 1; ; line++ {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, smsgw.Errorf(smsgw.EINVALID, "csv: %v", err)
		}
		if len(rec) == 0 || (len(rec) == 1 && strings.TrimSpace(rec[0]) == "") {
			continue
		}
		if len(rec) > 2 {
			return nil, smsgw.Errorf(smsgw.EINVALID, "csv line %d: %d columns, want number[,sender]", line, len(rec))
		}
		if line == 1 && strings.EqualFold(strings.TrimSpace(rec[0]), "number") {
			continue
		}
		sender := ""
		if len(rec) == 2 {
			sender = strings.TrimSpace(rec[1])
		}
		e, err := optOutEntry(customerID, strings.TrimSpace(rec[0]), sender)
		if err != nil {
			return nil, smsgw.Errorf(smsgw.EINVALID, "csv line %d: %s", line, smsgw.ErrorMessage(err))
		}
		e.Source = "import"
		entries = append(entries, e)
		if len(entries) > MaxImportLines {
			return nil, smsgw.Errorf(smsgw.EINVALID, "csv: more than %d entries; split the file", MaxImportLines)
		}
	}
	if len(entries) == 0 {
		return nil, smsgw.Errorf(smsgw.EINVALID, "csv: no entries")
	}
	return entries, nil
}

func (s *rulesService) ReleaseMessage(ctx context.Context, req *smsgwv1.ReleaseMessageRequest) (*smsgwv1.ReleaseMessageResponse, error) {
	if err := s.review(ctx, req.GetId(), true, req.GetReason()); err != nil {
		return nil, err
	}
	return &smsgwv1.ReleaseMessageResponse{Id: req.GetId()}, nil
}

func (s *rulesService) RejectMessage(ctx context.Context, req *smsgwv1.RejectMessageRequest) (*smsgwv1.RejectMessageResponse, error) {
	if err := s.review(ctx, req.GetId(), false, req.GetReason()); err != nil {
		return nil, err
	}
	return &smsgwv1.RejectMessageResponse{Id: req.GetId()}, nil
}

// maxReviewReason bounds the reason of a review.
const maxReviewReason = 256

func (s *rulesService) review(ctx context.Context, messageID string, release bool, reason string) error {
	id, err := customerID(ctx)
	if err != nil {
		return err
	}
	if err := checkReview(messageID, reason); err != nil {
		return err
	}
	return changeError(s.reviewer.Review(ctx, id, messageID, release, reason))
}

// checkReview checks a review request's message ID and reason.
func checkReview(messageID, reason string) error {
	if err := checkID(messageID); err != nil {
		return err
	}
	if len(reason) > maxReviewReason {
		return smsgw.Errorf(smsgw.EINVALID, "reason is longer than %d bytes", maxReviewReason)
	}
	return nil
}

// operatorReviewService implements smsgwv1.OperatorReviewService, behind
// the admin keys (adminMethod).
type operatorReviewService struct {
	smsgwv1.UnimplementedOperatorReviewServiceServer
	reviewer smsgw.OperatorReviewer
	held     smsgw.HeldLister
}

func (s *operatorReviewService) ListHeldMessages(ctx context.Context, req *smsgwv1.ListHeldMessagesRequest) (*smsgwv1.ListHeldMessagesResponse, error) {
	if s.held == nil {
		return s.UnimplementedOperatorReviewServiceServer.ListHeldMessages(ctx, req)
	}
	if c := req.GetCustomerId(); c != "" {
		if err := checkID(c); err != nil {
			return nil, err
		}
	}
	page, err := s.held.ListHeld(ctx, smsgw.HeldQuery{CustomerID: req.GetCustomerId(), PageSize: int(req.GetPageSize()), PageToken: req.GetPageToken()})
	if err != nil {
		return nil, err
	}
	out := &smsgwv1.ListHeldMessagesResponse{Messages: make([]*smsgwv1.HeldMessage, 0, len(page.Messages)), NextPageToken: page.NextPageToken}
	for _, h := range page.Messages {
		out.Messages = append(out.Messages, &smsgwv1.HeldMessage{
			Id: h.ID, CustomerId: h.CustomerID, From: h.From, To: h.To, Rule: h.Rule, Reason: h.Reason,
			HeldAt: timestamppb.New(h.HeldAt), HoldUntil: timestamppb.New(h.HoldUntil),
		})
	}
	return out, nil
}

func (s *operatorReviewService) ReleaseHeldMessage(ctx context.Context, req *smsgwv1.ReleaseHeldMessageRequest) (*smsgwv1.ReleaseHeldMessageResponse, error) {
	owner, err := s.review(ctx, req.GetId(), true, req.GetReason())
	if err != nil {
		return nil, err
	}
	return &smsgwv1.ReleaseHeldMessageResponse{Id: req.GetId(), CustomerId: owner}, nil
}

func (s *operatorReviewService) RejectHeldMessage(ctx context.Context, req *smsgwv1.RejectHeldMessageRequest) (*smsgwv1.RejectHeldMessageResponse, error) {
	owner, err := s.review(ctx, req.GetId(), false, req.GetReason())
	if err != nil {
		return nil, err
	}
	return &smsgwv1.RejectHeldMessageResponse{Id: req.GetId(), CustomerId: owner}, nil
}

func (s *operatorReviewService) review(ctx context.Context, messageID string, release bool, reason string) (string, error) {
	if err := checkReview(messageID, reason); err != nil {
		return "", err
	}
	owner, err := s.reviewer.ReviewAny(ctx, messageID, release, reason)
	if err != nil {
		return "", changeError(err)
	}
	return owner, nil
}
