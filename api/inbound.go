package api

import (
	"context"
	"fmt"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"

	smsgw "github.com/smsgw/smsgw"
	smsgwv1 "github.com/smsgw/smsgw/proto/smsgw/v1"
)

// InboundLister lists inbound messages (the event store does).
type InboundLister interface {
	ListInbound(ctx context.Context, q smsgw.InboundQuery) (smsgw.InboundPage, error)
}

// FailedNotificationLister lists a customer's failed notifications (the
// event store does).
type FailedNotificationLister interface {
	ListFailedNotifications(ctx context.Context, customerID, pageToken string, pageSize int) ([]smsgw.FailedNotification, string, error)
}

// Redeliverer starts the redelivery of a customer's failed notification
// (lifecycle.Redeliverer does).
type Redeliverer interface {
	Redeliver(ctx context.Context, customerID, id string) (workflowID string, err error)
}

// InboundDeps serve InboundService and NotificationService. All three are required.
type InboundDeps struct {
	Inbound     InboundLister
	Failed      FailedNotificationLister
	Redeliverer Redeliverer
}

// maxPageSize is the largest page a listing returns.
const maxPageSize = 500

// registerInbound adds InboundService and NotificationService to the gRPC
// server, behind the same interceptors as MessageService. Nothing is added
// when d is nil.
func registerInbound(s *grpc.Server, d *InboundDeps) error {
	if d == nil {
		return nil
	}
	if d.Inbound == nil || d.Failed == nil || d.Redeliverer == nil {
		return fmt.Errorf("api: InboundDeps needs Inbound, Failed and Redeliverer")
	}
	smsgwv1.RegisterInboundServiceServer(s, &inboundService{inbound: d.Inbound})
	smsgwv1.RegisterNotificationServiceServer(s, &notificationService{failed: d.Failed, redeliver: d.Redeliverer})
	return nil
}

// registerInboundGateway adds the REST mapping of both services to the
// gateway mux, over the in-process connection.
func registerInboundGateway(ctx context.Context, mux *runtime.ServeMux, conn grpc.ClientConnInterface, d *InboundDeps) error {
	if d == nil {
		return nil
	}
	if err := smsgwv1.RegisterInboundServiceHandlerClient(ctx, mux, smsgwv1.NewInboundServiceClient(conn)); err != nil {
		return fmt.Errorf("api: register inbound REST gateway: %w", err)
	}
	if err := smsgwv1.RegisterNotificationServiceHandlerClient(ctx, mux, smsgwv1.NewNotificationServiceClient(conn)); err != nil {
		return fmt.Errorf("api: register notification REST gateway: %w", err)
	}
	return nil
}

// pageSize checks a requested page size; 0 means the store's default.
func pageSize(n int32) (int, error) {
	if n < 0 {
		return 0, smsgw.Errorf(smsgw.EINVALID, "pageSize must not be negative")
	}
	return int(min(n, maxPageSize)), nil
}

// customerID is the authenticated customer's ID.
func customerID(ctx context.Context) (string, error) {
	cust, ok := CustomerFromContext(ctx)
	if !ok || cust.ID == "" {
		return "", smsgw.Errorf(smsgw.EUNAUTHORIZED, "not authenticated")
	}
	return cust.ID, nil
}

// inboundService implements smsgwv1.InboundService.
type inboundService struct {
	smsgwv1.UnimplementedInboundServiceServer
	inbound InboundLister
}

func (s *inboundService) ListInboundMessages(ctx context.Context, req *smsgwv1.ListInboundMessagesRequest) (*smsgwv1.ListInboundMessagesResponse, error) {
	id, err := customerID(ctx)
	if err != nil {
		return nil, err
	}
	size, err := pageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	q := smsgw.InboundQuery{CustomerID: id, PageSize: size, PageToken: req.GetPageToken()}
	if req.GetSince() != nil {
		if err := req.GetSince().CheckValid(); err != nil {
			return nil, smsgw.Errorf(smsgw.EINVALID, "since: %v", err)
		}
		q.Since = req.GetSince().AsTime()
	}
	page, err := s.inbound.ListInbound(ctx, q)
	if err != nil {
		return nil, err
	}
	out := &smsgwv1.ListInboundMessagesResponse{NextPageToken: page.NextPageToken, Messages: make([]*smsgwv1.InboundMessage, 0, len(page.Messages))}
	for _, m := range page.Messages {
		out.Messages = append(out.Messages, &smsgwv1.InboundMessage{
			Id: m.ID, From: m.From, To: m.To, Text: m.Text, Encoding: m.Encoding, Parts: int32(m.Parts),
			Partial: m.Partial, Keyword: m.Keyword, ReceivedAt: timestamp(&m.ReceivedAt), Status: inboundStatusToProto(m.Status),
		})
	}
	return out, nil
}

func inboundStatusToProto(s string) smsgwv1.InboundStatus {
	switch s {
	case smsgw.InboundRouted:
		return smsgwv1.InboundStatus_INBOUND_STATUS_ROUTED
	case smsgw.InboundDelivered:
		return smsgwv1.InboundStatus_INBOUND_STATUS_DELIVERED
	case smsgw.InboundFailed:
		return smsgwv1.InboundStatus_INBOUND_STATUS_FAILED
	}
	return smsgwv1.InboundStatus_INBOUND_STATUS_UNSPECIFIED
}

// notificationService implements smsgwv1.NotificationService.
type notificationService struct {
	smsgwv1.UnimplementedNotificationServiceServer
	failed    FailedNotificationLister
	redeliver Redeliverer
}

func (s *notificationService) ListFailedNotifications(ctx context.Context, req *smsgwv1.ListFailedNotificationsRequest) (*smsgwv1.ListFailedNotificationsResponse, error) {
	id, err := customerID(ctx)
	if err != nil {
		return nil, err
	}
	size, err := pageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	list, next, err := s.failed.ListFailedNotifications(ctx, id, req.GetPageToken(), size)
	if err != nil {
		return nil, err
	}
	out := &smsgwv1.ListFailedNotificationsResponse{NextPageToken: next, Notifications: make([]*smsgwv1.FailedNotification, 0, len(list))}
	for _, f := range list {
		out.Notifications = append(out.Notifications, &smsgwv1.FailedNotification{
			Id: f.ID, MessageId: f.Subject, Channel: f.Channel, Subject: f.What, Reason: f.Reason,
			FailedAt: timestamp(&f.FailedAt), DeliveredAt: timestamp(f.DeliveredAt),
		})
	}
	return out, nil
}

func (s *notificationService) RedeliverNotification(ctx context.Context, req *smsgwv1.RedeliverNotificationRequest) (*smsgwv1.RedeliverNotificationResponse, error) {
	id, err := customerID(ctx)
	if err != nil {
		return nil, err
	}
	if req.GetId() == "" || len(req.GetId()) > 4*maxIDLength {
		return nil, smsgw.Errorf(smsgw.EINVALID, "id must be the id of a failed notification")
	}
	wid, err := s.redeliver.Redeliver(ctx, id, req.GetId())
	if err != nil {
		return nil, err
	}
	return &smsgwv1.RedeliverNotificationResponse{Id: req.GetId(), WorkflowId: wid}, nil
}
