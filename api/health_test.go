package api

import (
	"context"
	"errors"
	"slices"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	smsgwv1 "github.com/smsgw/smsgw/proto/smsgw/v1"
)

func dialRaw(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// The standard health service answers without an API key, with the
// readiness /readyz reports.
func TestGRPCHealthFollowsReadiness(t *testing.T) {
	for _, tc := range []struct {
		ready error
		want  healthpb.HealthCheckResponse_ServingStatus
	}{
		{nil, healthpb.HealthCheckResponse_SERVING},
		{errors.New("event store down"), healthpb.HealthCheckResponse_NOT_SERVING},
	} {
		ts := startServer(t, Config{}, tc.ready)
		h := healthpb.NewHealthClient(dialRaw(t, ts.grpcAddr))
		resp, err := h.Check(context.Background(), &healthpb.HealthCheckRequest{})
		if err != nil || resp.GetStatus() != tc.want {
			t.Errorf("ready=%v: Check = %v, %v; want %v", tc.ready, resp.GetStatus(), err, tc.want)
		}
		watch, err := h.Watch(context.Background(), &healthpb.HealthCheckRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if first, err := watch.Recv(); err != nil || first.GetStatus() != tc.want {
			t.Errorf("ready=%v: Watch sent %v, %v; want %v", tc.ready, first.GetStatus(), err, tc.want)
		}
	}
}

// Server reflection lists the API's services without an API key, as
// grpcurl asks for them.
func TestGRPCReflectionListsServices(t *testing.T) {
	ts := startServer(t, Config{}, nil)
	stream, err := reflectionpb.NewServerReflectionClient(dialRaw(t, ts.grpcAddr)).ServerReflectionInfo(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	for _, want := range []string{"smsgw.v1.MessageService", "grpc.health.v1.Health"} {
		if !slices.Contains(names, want) {
			t.Errorf("services %v lack %s", names, want)
		}
	}
	// The API itself still wants a key.
	_, err = ts.grpcClient(t).GetMessage(context.Background(), &smsgwv1.GetMessageRequest{Id: "alice-1"})
	if status.Code(err) != codes.Unauthenticated {
		t.Errorf("GetMessage without a key: %v, want UNAUTHENTICATED", err)
	}
}
