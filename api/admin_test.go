package api

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	smsgw "github.com/smsgw/smsgw"
	smsgwv1 "github.com/smsgw/smsgw/proto/smsgw/v1"
)

// fakeAdmin records the changes asked of it. Only what the tests use answers.
type fakeAdmin struct {
	Admin
	calls []string
}

func (f *fakeAdmin) AdminByKey(key string) (string, bool) { return "ops", key == "admin-secret" }

func (f *fakeAdmin) Update(_ context.Context, who, kind, id string, patch map[string]any, expected int64) (map[string]any, int64, error) {
	f.calls = append(f.calls, who+" update "+kind+" "+id)
	if expected != 0 && expected != 7 {
		return nil, 0, smsgw.Errorf(smsgw.ECONFLICT, "the configuration is at version 7, not %d", expected)
	}
	out := map[string]any{"id": id}
	for k, v := range patch {
		out[k] = v
	}
	return out, 8, nil
}

func (f *fakeAdmin) List(context.Context, string) ([]map[string]any, int64, error) {
	return []map[string]any{{"id": "alice"}}, 7, nil
}

func startAdminServer(t *testing.T) (base, grpcAddr string, admin *fakeAdmin) {
	t.Helper()
	admin = &fakeAdmin{}
	srv, err := New(Config{}, Deps{
		Submitter: &recordingSubmitter{},
		Messages:  recordReader{},
		Customers: customerList{{ID: "alice", APIKeyHashes: []string{smsgw.HashAPIKey(aliceKey)}}},
		Admin:     admin,
	})
	if err != nil {
		t.Fatal(err)
	}
	grpcLn, _ := net.Listen("tcp", "127.0.0.1:0")
	httpLn, _ := net.Listen("tcp", "127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, grpcLn, httpLn) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return "http://" + httpLn.Addr().String(), grpcLn.Addr().String(), admin
}

func TestAdminKeysAndCustomerKeysKeepToTheirSide(t *testing.T) {
	base, grpcAddr, admin := startAdminServer(t)

	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	withKey := func(key string) context.Context {
		return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+key)
	}
	adminClient := smsgwv1.NewAdminServiceClient(conn)
	if _, err := adminClient.ListCustomers(withKey(aliceKey), &smsgwv1.ListCustomersRequest{}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("a customer key on the admin API over gRPC: %v", err)
	}
	if _, err := adminClient.ListCustomers(withKey("nobody"), &smsgwv1.ListCustomersRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Errorf("an unknown key on the admin API: %v", err)
	}
	if out, err := adminClient.ListCustomers(withKey("admin-secret"), &smsgwv1.ListCustomersRequest{}); err != nil || out.GetVersion() != 7 || len(out.GetCustomers()) != 1 {
		t.Errorf("the admin key: %v, %v", out, err)
	}
	messages := smsgwv1.NewMessageServiceClient(conn)
	if _, err := messages.GetMessage(withKey("admin-secret"), &smsgwv1.GetMessageRequest{Id: "m"}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("the admin key on the customer API over gRPC: %v", err)
	}

	// REST: the body is the patch, the version a query parameter, the
	// caller the admin key's name.
	req, _ := http.NewRequest("PATCH", base+"/v1/admin/customers/alice?expectedVersion=7", strings.NewReader(`{"tps": 5}`))
	req.Header.Set("Authorization", "Bearer admin-secret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || len(admin.calls) != 1 || admin.calls[0] != "ops update customer alice" {
		t.Errorf("PATCH: HTTP %d, calls %v", resp.StatusCode, admin.calls)
	}
	req, _ = http.NewRequest("PATCH", base+"/v1/admin/customers/alice?expectedVersion=6", strings.NewReader(`{"tps": 5}`))
	req.Header.Set("Authorization", "Bearer admin-secret")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusConflict {
		t.Errorf("PATCH against a stale version: HTTP %d, want 409", resp.StatusCode)
	}
	if code, _ := call(t, "GET", base+"/v1/admin/customers", aliceKey); code != http.StatusForbidden {
		t.Errorf("a customer key on the admin API over REST: HTTP %d", code)
	}
}
