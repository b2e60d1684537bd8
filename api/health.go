package api

import (
	"context"
	"strings"
	"time"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
)

// Standard gRPC services for tools and probes: the health service
// (Kubernetes gRPC probes, grpc-health-probe) answers with the same
// readiness as /readyz, and server reflection lets grpcurl, Postman and
// the like list and call the API without its proto files. Neither needs an
// API key: they tell only what the public proto files and /readyz tell.

// publicMethod reports whether a gRPC method is served without an API key.
func publicMethod(fullMethod string) bool {
	return strings.HasPrefix(fullMethod, "/grpc.health.v1.Health/") ||
		strings.HasPrefix(fullMethod, "/grpc.reflection.v1.ServerReflection/") ||
		strings.HasPrefix(fullMethod, "/grpc.reflection.v1alpha.ServerReflection/")
}

func registerStandardServices(s *grpc.Server, ready func(context.Context) error) {
	healthpb.RegisterHealthServer(s, &health{ready: ready, every: time.Second})
	reflection.Register(s)
}

// health is grpc.health.v1.Health over the readiness check. The service
// name is ignored: the gateway is ready or not as a whole.
type health struct {
	healthpb.UnimplementedHealthServer
	ready func(context.Context) error
	every time.Duration // how often Watch looks again
}

func (h *health) status(ctx context.Context) healthpb.HealthCheckResponse_ServingStatus {
	if h.ready(ctx) != nil {
		return healthpb.HealthCheckResponse_NOT_SERVING
	}
	return healthpb.HealthCheckResponse_SERVING
}

func (h *health) Check(ctx context.Context, _ *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	return &healthpb.HealthCheckResponse{Status: h.status(ctx)}, nil
}

// Watch sends the status, then each change, until the caller goes away.
func (h *health) Watch(_ *healthpb.HealthCheckRequest, stream healthpb.Health_WatchServer) error {
	ctx := stream.Context()
	last := healthpb.HealthCheckResponse_SERVICE_UNKNOWN
	tick := time.NewTicker(h.every)
	defer tick.Stop()
	for {
		if st := h.status(ctx); st != last {
			if err := stream.Send(&healthpb.HealthCheckResponse{Status: st}); err != nil {
				return err
			}
			last = st
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}
