package api

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	_ "time/tzdata" // usage reports name IANA zones, wherever the binary runs

	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	smsgw "github.com/smsgw/smsgw"
	smsgwv1 "github.com/smsgw/smsgw/proto/smsgw/v1"
)

// TrafficDeps serve TrafficService (and OperatorTrafficService, where the
// operators' API mounts it). All three are required.
type TrafficDeps struct {
	Messages smsgw.MessageSearcher // the reporting database
	Events   smsgw.EventReader     // the event store
	Usage    smsgw.UsageReader     // the reporting database
}

func (d *TrafficDeps) check() error {
	if d.Messages == nil || d.Events == nil || d.Usage == nil {
		return fmt.Errorf("api: TrafficDeps needs Messages, Events and Usage")
	}
	return nil
}

// registerTraffic adds TrafficService to the gRPC server, behind the same
// interceptors as MessageService. Nothing is added when d is nil.
func registerTraffic(s *grpc.Server, d *TrafficDeps) error {
	if d == nil {
		return nil
	}
	if err := d.check(); err != nil {
		return err
	}
	smsgwv1.RegisterTrafficServiceServer(s, &trafficService{traffic: traffic{d}})
	return nil
}

// NewOperatorTrafficServer returns OperatorTrafficService: searches, events
// and usage across customers. It trusts its caller: mount it only behind
// the operators' authentication, never on the customers' API.
func NewOperatorTrafficServer(d TrafficDeps) (smsgwv1.OperatorTrafficServiceServer, error) {
	if err := d.check(); err != nil {
		return nil, err
	}
	return &operatorTrafficService{traffic: traffic{&d}}, nil
}

// traffic is what both services do, for one customer or any.
type traffic struct{ *TrafficDeps }

// trafficService implements smsgwv1.TrafficService for the authenticated
// customer.
type trafficService struct {
	smsgwv1.UnimplementedTrafficServiceServer
	traffic
}

func (s *trafficService) SearchMessages(ctx context.Context, req *smsgwv1.SearchMessagesRequest) (*smsgwv1.SearchMessagesResponse, error) {
	id, err := customerID(ctx)
	if err != nil {
		return nil, err
	}
	found, next, err := s.search(ctx, id, req)
	if err != nil {
		return nil, err
	}
	return &smsgwv1.SearchMessagesResponse{Messages: found, NextPageToken: next}, nil
}

func (s *trafficService) ListMessageEvents(ctx context.Context, req *smsgwv1.ListMessageEventsRequest) (*smsgwv1.ListMessageEventsResponse, error) {
	id, err := customerID(ctx)
	if err != nil {
		return nil, err
	}
	events, _, err := s.events(ctx, id, req.GetId())
	if err != nil {
		return nil, err
	}
	return &smsgwv1.ListMessageEventsResponse{Events: events}, nil
}

func (s *trafficService) GetUsage(ctx context.Context, req *smsgwv1.GetUsageRequest) (*smsgwv1.GetUsageResponse, error) {
	id, err := customerID(ctx)
	if err != nil {
		return nil, err
	}
	return s.usage(ctx, id, req.GetFrom(), req.GetTo(), req.GetTimeZone())
}

// operatorTrafficService implements smsgwv1.OperatorTrafficService.
type operatorTrafficService struct {
	smsgwv1.UnimplementedOperatorTrafficServiceServer
	traffic
}

func (s *operatorTrafficService) SearchAllMessages(ctx context.Context, req *smsgwv1.SearchAllMessagesRequest) (*smsgwv1.SearchAllMessagesResponse, error) {
	found, next, err := s.search(ctx, req.GetCustomerId(), req)
	if err != nil {
		return nil, err
	}
	return &smsgwv1.SearchAllMessagesResponse{Messages: found, NextPageToken: next}, nil
}

func (s *operatorTrafficService) ListAnyMessageEvents(ctx context.Context, req *smsgwv1.ListAnyMessageEventsRequest) (*smsgwv1.ListAnyMessageEventsResponse, error) {
	events, owner, err := s.events(ctx, "", req.GetId())
	if err != nil {
		return nil, err
	}
	return &smsgwv1.ListAnyMessageEventsResponse{Events: events, CustomerId: owner}, nil
}

func (s *operatorTrafficService) GetAllUsage(ctx context.Context, req *smsgwv1.GetAllUsageRequest) (*smsgwv1.GetAllUsageResponse, error) {
	rep, err := s.usage(ctx, req.GetCustomerId(), req.GetFrom(), req.GetTo(), req.GetTimeZone())
	if err != nil {
		return nil, err
	}
	return &smsgwv1.GetAllUsageResponse{Rows: rep.Rows, TotalMessages: rep.TotalMessages, TotalSegments: rep.TotalSegments,
		TotalCosts: rep.TotalCosts, Refusals: rep.Refusals, TotalRefusals: rep.TotalRefusals}, nil
}

// searchRequest is a search request, whichever service's.
type searchRequest interface {
	GetStatus() string
	GetTo() string
	GetFrom() string
	GetConnectorId() string
	GetClientRef() string
	GetSince() *timestamppb.Timestamp
	GetUntil() *timestamppb.Timestamp
	GetPageSize() int32
	GetPageToken() string
}

// maxFilterLength bounds a filter value before it reaches a store: no
// column it is compared with is longer.
const maxFilterLength = 128

// messageQuery checks a search request and makes it a query; customerID
// "" searches every customer.
func messageQuery(customerID string, r searchRequest) (smsgw.MessageQuery, error) {
	q := smsgw.MessageQuery{
		CustomerID: customerID, To: r.GetTo(), From: r.GetFrom(), ConnectorID: r.GetConnectorId(), ClientRef: r.GetClientRef(),
		PageSize: int(r.GetPageSize()), PageToken: r.GetPageToken(),
	}
	for _, v := range [][2]string{{"to", q.To}, {"from", q.From}, {"connectorId", q.ConnectorID}, {"clientRef", q.ClientRef}, {"customerId", customerID}} {
		if len(v[1]) > maxFilterLength {
			return q, smsgw.Errorf(smsgw.EINVALID, "%s is longer than %d characters", v[0], maxFilterLength)
		}
	}
	if len(q.PageToken) > 4*maxFilterLength {
		return q, smsgw.Errorf(smsgw.EINVALID, "pageToken is not a page token of this search")
	}
	if q.PageSize < 0 {
		return q, smsgw.Errorf(smsgw.EINVALID, "pageSize must not be negative")
	}
	if r.GetStatus() != "" {
		st, ok := statusFromText(r.GetStatus())
		if !ok {
			return q, smsgw.Errorf(smsgw.EINVALID, "status %q is not a message status (such as DELIVERED)", r.GetStatus())
		}
		q.Status = st
	}
	var err error
	if q.Since, err = scheduleTime("since", r.GetSince()); err != nil {
		return q, err
	}
	if q.Until, err = scheduleTime("until", r.GetUntil()); err != nil {
		return q, err
	}
	return q, nil
}

// statusFromText reads a status as DELIVERED or MESSAGE_STATUS_DELIVERED,
// in any case.
func statusFromText(s string) (smsgw.Status, bool) {
	st := smsgw.Status(strings.TrimPrefix(strings.ToUpper(s), "MESSAGE_STATUS_"))
	return st, st.Valid()
}

// search checks a search request and runs it; customerID "" searches
// every customer.
func (t traffic) search(ctx context.Context, customerID string, r searchRequest) ([]*smsgwv1.FoundMessage, string, error) {
	q, err := messageQuery(customerID, r)
	if err != nil {
		return nil, "", err
	}
	page, err := t.Messages.SearchMessages(ctx, q)
	if err != nil {
		return nil, "", err
	}
	out := make([]*smsgwv1.FoundMessage, 0, len(page.Messages))
	for _, r := range page.Messages {
		out = append(out, &smsgwv1.FoundMessage{
			Message: recordToProto(r), CustomerId: r.CustomerID, EntryPoint: string(r.EntryPoint), UpstreamId: r.UpstreamID,
		})
	}
	return out, page.NextPageToken, nil
}

// events reads a message's events in order; customerID "" reads any
// customer's. Another customer's message is not found, as an absent one.
func (t traffic) events(ctx context.Context, customerID, id string) ([]*smsgwv1.MessageEvent, string, error) {
	if err := checkID(id); err != nil {
		return nil, "", err
	}
	all, err := t.Events.Events(ctx, id)
	if err != nil {
		return nil, "", err
	}
	var owner string
	var mine []smsgw.Event
	for _, e := range all {
		if customerID == "" || e.CustomerID == customerID {
			mine = append(mine, e)
			owner = cmp.Or(owner, e.CustomerID)
		}
	}
	if len(mine) == 0 {
		return nil, "", smsgw.Errorf(smsgw.ENOTFOUND, "message %q not found", id)
	}
	// In the order of the message's life; a notification's events share
	// the number of the status they notify, and come in time order.
	slices.SortStableFunc(mine, func(a, b smsgw.Event) int {
		return cmp.Or(cmp.Compare(a.Seq, b.Seq), a.At.Compare(b.At))
	})
	out := make([]*smsgwv1.MessageEvent, 0, len(mine))
	for _, e := range mine {
		data, err := eventData(e.Data)
		if err != nil {
			return nil, "", fmt.Errorf("event %s: %w", e.ID, err)
		}
		out = append(out, &smsgwv1.MessageEvent{Type: e.Type, At: timestamp(&e.At), Seq: int32(e.Seq), Data: data})
	}
	return out, owner, nil
}

// eventData is an event's data as JSON would give it: times in RFC 3339,
// nested documents as objects. The notification channel's own copy of a
// failed delivery is left out: it repeats the message.
func eventData(data map[string]any) (*structpb.Struct, error) {
	out := &structpb.Struct{Fields: map[string]*structpb.Value{}}
	if len(data) == 0 {
		return out, nil
	}
	b, err := json.Marshal(data)
	if err != nil {
		return nil, err
	}
	if err := protojson.Unmarshal(b, out); err != nil {
		return nil, err
	}
	delete(out.Fields, "delivery")
	return out, nil
}

// usage checks a usage request and reads the report; customerID "" counts
// every customer.
func (t traffic) usage(ctx context.Context, customerID, from, to, zone string) (*smsgwv1.GetUsageResponse, error) {
	var err error
	q := smsgw.UsageQuery{CustomerID: customerID, Location: time.UTC}
	if zone != "" && zone != "UTC" {
		// "Local" would be the server's zone, which the caller cannot know.
		if zone == "Local" || len(zone) > 64 {
			return nil, smsgw.Errorf(smsgw.EINVALID, "timeZone %q is not an IANA time zone (such as Europe/Berlin)", zone)
		}
		if q.Location, err = time.LoadLocation(zone); err != nil {
			return nil, smsgw.Errorf(smsgw.EINVALID, "timeZone %q is not an IANA time zone (such as Europe/Berlin)", zone)
		}
	}
	for _, d := range []struct {
		name, value string
		into        *time.Time
	}{{"from", from, &q.From}, {"to", to, &q.To}} {
		if d.value == "" {
			return nil, smsgw.Errorf(smsgw.EINVALID, "%s is required, as YYYY-MM-DD", d.name)
		}
		if *d.into, err = time.ParseInLocation(time.DateOnly, d.value, q.Location); err != nil {
			return nil, smsgw.Errorf(smsgw.EINVALID, "%s %q is not a date YYYY-MM-DD", d.name, d.value)
		}
	}
	found, err := t.Usage.Usage(ctx, q)
	if err != nil {
		return nil, err
	}
	rep := &smsgwv1.GetUsageResponse{Rows: make([]*smsgwv1.UsageRow, 0, len(found))}
	costs := map[string]int64{}
	for _, r := range found {
		rep.Rows = append(rep.Rows, &smsgwv1.UsageRow{
			Day: r.Day, CustomerId: r.CustomerID, EntryPoint: string(r.EntryPoint), ConnectorId: r.ConnectorID,
			Status: statusToProto(r.Status), Messages: r.Messages, Segments: r.Segments,
			Currency: r.Currency, CostMicros: r.CostMicros,
		})
		rep.TotalMessages += r.Messages
		rep.TotalSegments += r.Segments
		if r.Currency != "" {
			costs[r.Currency] += r.CostMicros
		}
	}
	for _, currency := range slices.Sorted(maps.Keys(costs)) {
		rep.TotalCosts = append(rep.TotalCosts, &smsgwv1.UsageCost{Currency: currency, CostMicros: costs[currency]})
	}
	refused, err := t.Usage.Refusals(ctx, q)
	if err != nil {
		return nil, err
	}
	for _, r := range refused {
		rep.Refusals = append(rep.Refusals, &smsgwv1.UsageRefusal{Day: r.Day, CustomerId: r.CustomerID, Reason: r.Reason, Refusals: r.Refusals})
		rep.TotalRefusals += r.Refusals
	}
	return rep, nil
}
