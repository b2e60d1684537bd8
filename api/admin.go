package api

import (
	"context"
	"fmt"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	smsgw "github.com/smsgw/smsgw"
	smsgwv1 "github.com/smsgw/smsgw/proto/smsgw/v1"
)

// The kinds of resource Admin changes.
const (
	KindCustomer  = "customer"
	KindConnector = "connector"
	KindRoute     = "route"
	KindPriceList = "price list"
)

// Admin changes the configuration (the admin package's Service does).
// Resources are the configuration file's fields as JSON objects; who is the
// admin key's name; expected, when not 0, the version a change is made
// against.
type Admin interface {
	// AdminByKey returns the name of an admin API key.
	AdminByKey(key string) (name string, ok bool)
	List(ctx context.Context, kind string) ([]map[string]any, int64, error)
	Get(ctx context.Context, kind, id string) (map[string]any, int64, error)
	Create(ctx context.Context, who, kind string, spec map[string]any, expected int64) (map[string]any, int64, error)
	Update(ctx context.Context, who, kind, id string, patch map[string]any, expected int64) (map[string]any, int64, error)
	Delete(ctx context.Context, who, kind, id string, expected int64) (int64, error)
	// Put creates a resource or replaces it whole; created says which.
	Put(ctx context.Context, who, kind, id string, spec map[string]any, expected int64) (out map[string]any, version int64, created bool, err error)
	SetCustomerDisabled(ctx context.Context, who, id string, disabled bool, expected int64) (map[string]any, int64, error)
	CreateAPIKey(ctx context.Context, who, customerID string, expected int64) (string, smsgw.APIKeyInfo, int64, error)
	ListAPIKeys(ctx context.Context, customerID string) ([]smsgw.APIKeyInfo, int64, error)
	RevokeAPIKey(ctx context.Context, who, customerID, keyID string, expected int64) (int64, error)
	Audit(ctx context.Context, before int64, limit int) ([]smsgw.ConfigVersion, error)
	Export(ctx context.Context) ([]byte, int64, error)
	Import(ctx context.Context, who string, yaml []byte, dryRun bool, expected int64) ([]string, int64, error)
}

// adminKey is the context key of the authenticated admin key's name.
type adminKey struct{}

// adminMethod reports whether a gRPC method is the admin API's:
// AdminService's or OperatorTrafficService's.
func adminMethod(fullMethod string) bool {
	for _, service := range []string{smsgwv1.AdminService_ServiceDesc.ServiceName, smsgwv1.OperatorTrafficService_ServiceDesc.ServiceName,
		smsgwv1.OperatorReviewService_ServiceDesc.ServiceName} {
		if strings.HasPrefix(fullMethod, "/"+service+"/") {
			return true
		}
	}
	return false
}

// who is the name of the admin key that authenticated the call.
func who(ctx context.Context) string {
	name, _ := ctx.Value(adminKey{}).(string)
	return name
}

// registerAdmin adds AdminService to the gRPC server, and
// OperatorTrafficService when t is set too. Nothing is added when a is nil.
func registerAdmin(s *grpc.Server, a Admin, e Eraser, t *TrafficDeps) error {
	if a == nil {
		return nil
	}
	smsgwv1.RegisterAdminServiceServer(s, &adminService{admin: a, eraser: e})
	if t == nil {
		return nil
	}
	op, err := NewOperatorTrafficServer(*t)
	if err != nil {
		return err
	}
	smsgwv1.RegisterOperatorTrafficServiceServer(s, op)
	return nil
}

// registerAdminGateway adds the REST mapping of what registerAdmin added.
func registerAdminGateway(ctx context.Context, mux *runtime.ServeMux, conn grpc.ClientConnInterface, a Admin, t *TrafficDeps) error {
	if a == nil {
		return nil
	}
	if err := smsgwv1.RegisterAdminServiceHandlerClient(ctx, mux, smsgwv1.NewAdminServiceClient(conn)); err != nil {
		return fmt.Errorf("api: register admin REST gateway: %w", err)
	}
	if t == nil {
		return nil
	}
	if err := smsgwv1.RegisterOperatorTrafficServiceHandlerClient(ctx, mux, smsgwv1.NewOperatorTrafficServiceClient(conn)); err != nil {
		return fmt.Errorf("api: register operator traffic REST gateway: %w", err)
	}
	return nil
}

type adminService struct {
	smsgwv1.UnimplementedAdminServiceServer
	admin  Admin
	eraser Eraser // nil: EraseNumber answers Unimplemented
}

// toStruct turns a resource into its protobuf form.
func toStruct(m map[string]any) (*structpb.Struct, error) {
	s, err := structpb.NewStruct(m)
	if err != nil {
		return nil, fmt.Errorf("resource to JSON: %w", err)
	}
	return s, nil
}

func toStructs(ms []map[string]any) ([]*structpb.Struct, error) {
	out := make([]*structpb.Struct, 0, len(ms))
	for _, m := range ms {
		s, err := toStruct(m)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// spec is a request's resource; a missing one is an empty object.
func spec(s *structpb.Struct, kind string) (map[string]any, error) {
	if s == nil {
		return nil, status.Errorf(codes.InvalidArgument, "the %s is missing: send its fields as a JSON object", kind)
	}
	return s.AsMap(), nil
}

func (a *adminService) ListCustomers(ctx context.Context, _ *smsgwv1.ListCustomersRequest) (*smsgwv1.ListCustomersResponse, error) {
	items, v, err := a.admin.List(ctx, KindCustomer)
	if err != nil {
		return nil, err
	}
	out, err := toStructs(items)
	return &smsgwv1.ListCustomersResponse{Customers: out, Version: v}, err
}

func (a *adminService) GetCustomer(ctx context.Context, req *smsgwv1.GetCustomerRequest) (*smsgwv1.GetCustomerResponse, error) {
	m, v, err := a.admin.Get(ctx, KindCustomer, req.GetId())
	if err != nil {
		return nil, err
	}
	s, err := toStruct(m)
	return &smsgwv1.GetCustomerResponse{Customer: s, Version: v}, err
}

func (a *adminService) CreateCustomer(ctx context.Context, req *smsgwv1.CreateCustomerRequest) (*smsgwv1.CreateCustomerResponse, error) {
	in, err := spec(req.GetCustomer(), KindCustomer)
	if err != nil {
		return nil, err
	}
	m, v, err := a.admin.Create(ctx, who(ctx), KindCustomer, in, req.GetExpectedVersion())
	if err != nil {
		return nil, err
	}
	s, err := toStruct(m)
	return &smsgwv1.CreateCustomerResponse{Customer: s, Version: v}, err
}

func (a *adminService) UpdateCustomer(ctx context.Context, req *smsgwv1.UpdateCustomerRequest) (*smsgwv1.UpdateCustomerResponse, error) {
	in, err := spec(req.GetCustomer(), KindCustomer)
	if err != nil {
		return nil, err
	}
	m, v, err := a.admin.Update(ctx, who(ctx), KindCustomer, req.GetId(), in, req.GetExpectedVersion())
	if err != nil {
		return nil, err
	}
	s, err := toStruct(m)
	return &smsgwv1.UpdateCustomerResponse{Customer: s, Version: v}, err
}

func (a *adminService) DisableCustomer(ctx context.Context, req *smsgwv1.DisableCustomerRequest) (*smsgwv1.DisableCustomerResponse, error) {
	m, v, err := a.admin.SetCustomerDisabled(ctx, who(ctx), req.GetId(), true, req.GetExpectedVersion())
	if err != nil {
		return nil, err
	}
	s, err := toStruct(m)
	return &smsgwv1.DisableCustomerResponse{Customer: s, Version: v}, err
}

func apiKey(k smsgw.APIKeyInfo) *smsgwv1.APIKey {
	out := &smsgwv1.APIKey{Id: k.ID, CustomerId: k.CustomerID, Prefix: k.Prefix}
	if !k.CreatedAt.IsZero() {
		out.CreateTime = timestamppb.New(k.CreatedAt)
	}
	return out
}

func (a *adminService) CreateAPIKey(ctx context.Context, req *smsgwv1.CreateAPIKeyRequest) (*smsgwv1.CreateAPIKeyResponse, error) {
	key, info, v, err := a.admin.CreateAPIKey(ctx, who(ctx), req.GetCustomerId(), req.GetExpectedVersion())
	if err != nil {
		return nil, err
	}
	return &smsgwv1.CreateAPIKeyResponse{Key: key, ApiKey: apiKey(info), Version: v}, nil
}

func (a *adminService) ListAPIKeys(ctx context.Context, req *smsgwv1.ListAPIKeysRequest) (*smsgwv1.ListAPIKeysResponse, error) {
	keys, v, err := a.admin.ListAPIKeys(ctx, req.GetCustomerId())
	if err != nil {
		return nil, err
	}
	out := &smsgwv1.ListAPIKeysResponse{Version: v}
	for _, k := range keys {
		out.ApiKeys = append(out.ApiKeys, apiKey(k))
	}
	return out, nil
}

func (a *adminService) RevokeAPIKey(ctx context.Context, req *smsgwv1.RevokeAPIKeyRequest) (*smsgwv1.RevokeAPIKeyResponse, error) {
	v, err := a.admin.RevokeAPIKey(ctx, who(ctx), req.GetCustomerId(), req.GetId(), req.GetExpectedVersion())
	if err != nil {
		return nil, err
	}
	return &smsgwv1.RevokeAPIKeyResponse{Version: v}, nil
}

func (a *adminService) ListConnectors(ctx context.Context, _ *smsgwv1.ListConnectorsRequest) (*smsgwv1.ListConnectorsResponse, error) {
	items, v, err := a.admin.List(ctx, KindConnector)
	if err != nil {
		return nil, err
	}
	out, err := toStructs(items)
	return &smsgwv1.ListConnectorsResponse{Connectors: out, Version: v}, err
}

func (a *adminService) GetConnector(ctx context.Context, req *smsgwv1.GetConnectorRequest) (*smsgwv1.GetConnectorResponse, error) {
	m, v, err := a.admin.Get(ctx, KindConnector, req.GetId())
	if err != nil {
		return nil, err
	}
	s, err := toStruct(m)
	return &smsgwv1.GetConnectorResponse{Connector: s, Version: v}, err
}

func (a *adminService) CreateConnector(ctx context.Context, req *smsgwv1.CreateConnectorRequest) (*smsgwv1.CreateConnectorResponse, error) {
	in, err := spec(req.GetConnector(), KindConnector)
	if err != nil {
		return nil, err
	}
	m, v, err := a.admin.Create(ctx, who(ctx), KindConnector, in, req.GetExpectedVersion())
	if err != nil {
		return nil, err
	}
	s, err := toStruct(m)
	return &smsgwv1.CreateConnectorResponse{Connector: s, Version: v}, err
}

func (a *adminService) UpdateConnector(ctx context.Context, req *smsgwv1.UpdateConnectorRequest) (*smsgwv1.UpdateConnectorResponse, error) {
	in, err := spec(req.GetConnector(), KindConnector)
	if err != nil {
		return nil, err
	}
	m, v, err := a.admin.Update(ctx, who(ctx), KindConnector, req.GetId(), in, req.GetExpectedVersion())
	if err != nil {
		return nil, err
	}
	s, err := toStruct(m)
	return &smsgwv1.UpdateConnectorResponse{Connector: s, Version: v}, err
}

func (a *adminService) DeleteConnector(ctx context.Context, req *smsgwv1.DeleteConnectorRequest) (*smsgwv1.DeleteConnectorResponse, error) {
	v, err := a.admin.Delete(ctx, who(ctx), KindConnector, req.GetId(), req.GetExpectedVersion())
	if err != nil {
		return nil, err
	}
	return &smsgwv1.DeleteConnectorResponse{Version: v}, nil
}

func (a *adminService) ListRoutes(ctx context.Context, _ *smsgwv1.ListRoutesRequest) (*smsgwv1.ListRoutesResponse, error) {
	items, v, err := a.admin.List(ctx, KindRoute)
	if err != nil {
		return nil, err
	}
	out, err := toStructs(items)
	return &smsgwv1.ListRoutesResponse{Routes: out, Version: v}, err
}

func (a *adminService) GetRoute(ctx context.Context, req *smsgwv1.GetRouteRequest) (*smsgwv1.GetRouteResponse, error) {
	m, v, err := a.admin.Get(ctx, KindRoute, req.GetName())
	if err != nil {
		return nil, err
	}
	s, err := toStruct(m)
	return &smsgwv1.GetRouteResponse{Route: s, Version: v}, err
}

func (a *adminService) CreateRoute(ctx context.Context, req *smsgwv1.CreateRouteRequest) (*smsgwv1.CreateRouteResponse, error) {
	in, err := spec(req.GetRoute(), KindRoute)
	if err != nil {
		return nil, err
	}
	m, v, err := a.admin.Create(ctx, who(ctx), KindRoute, in, req.GetExpectedVersion())
	if err != nil {
		return nil, err
	}
	s, err := toStruct(m)
	return &smsgwv1.CreateRouteResponse{Route: s, Version: v}, err
}

func (a *adminService) UpdateRoute(ctx context.Context, req *smsgwv1.UpdateRouteRequest) (*smsgwv1.UpdateRouteResponse, error) {
	in, err := spec(req.GetRoute(), KindRoute)
	if err != nil {
		return nil, err
	}
	m, v, err := a.admin.Update(ctx, who(ctx), KindRoute, req.GetName(), in, req.GetExpectedVersion())
	if err != nil {
		return nil, err
	}
	s, err := toStruct(m)
	return &smsgwv1.UpdateRouteResponse{Route: s, Version: v}, err
}

func (a *adminService) DeleteRoute(ctx context.Context, req *smsgwv1.DeleteRouteRequest) (*smsgwv1.DeleteRouteResponse, error) {
	v, err := a.admin.Delete(ctx, who(ctx), KindRoute, req.GetName(), req.GetExpectedVersion())
	if err != nil {
		return nil, err
	}
	return &smsgwv1.DeleteRouteResponse{Version: v}, nil
}

func (a *adminService) ListPriceLists(ctx context.Context, _ *smsgwv1.ListPriceListsRequest) (*smsgwv1.ListPriceListsResponse, error) {
	items, v, err := a.admin.List(ctx, KindPriceList)
	if err != nil {
		return nil, err
	}
	out, err := toStructs(items)
	return &smsgwv1.ListPriceListsResponse{PriceLists: out, Version: v}, err
}

func (a *adminService) GetPriceList(ctx context.Context, req *smsgwv1.GetPriceListRequest) (*smsgwv1.GetPriceListResponse, error) {
	m, v, err := a.admin.Get(ctx, KindPriceList, req.GetId())
	if err != nil {
		return nil, err
	}
	s, err := toStruct(m)
	return &smsgwv1.GetPriceListResponse{PriceList: s, Version: v}, err
}

func (a *adminService) PutPriceList(ctx context.Context, req *smsgwv1.PutPriceListRequest) (*smsgwv1.PutPriceListResponse, error) {
	in, err := spec(req.GetPriceList(), KindPriceList)
	if err != nil {
		return nil, err
	}
	m, v, created, err := a.admin.Put(ctx, who(ctx), KindPriceList, req.GetId(), in, req.GetExpectedVersion())
	if err != nil {
		return nil, err
	}
	s, err := toStruct(m)
	return &smsgwv1.PutPriceListResponse{PriceList: s, Version: v, Created: created}, err
}

func (a *adminService) DeletePriceList(ctx context.Context, req *smsgwv1.DeletePriceListRequest) (*smsgwv1.DeletePriceListResponse, error) {
	v, err := a.admin.Delete(ctx, who(ctx), KindPriceList, req.GetId(), req.GetExpectedVersion())
	if err != nil {
		return nil, err
	}
	return &smsgwv1.DeletePriceListResponse{Version: v}, nil
}

func (a *adminService) ListAuditEntries(ctx context.Context, req *smsgwv1.ListAuditEntriesRequest) (*smsgwv1.ListAuditEntriesResponse, error) {
	size, err := pageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	if req.GetBeforeVersion() < 0 {
		return nil, smsgw.Errorf(smsgw.EINVALID, "beforeVersion must not be negative")
	}
	versions, err := a.admin.Audit(ctx, req.GetBeforeVersion(), size)
	if err != nil {
		return nil, err
	}
	out := &smsgwv1.ListAuditEntriesResponse{}
	for _, v := range versions {
		out.Entries = append(out.Entries, &smsgwv1.AuditEntry{
			Version: v.Version, PreviousVersion: v.Version - 1, Time: timestamppb.New(v.At),
			Who: v.Who, Action: v.Action, Changes: v.Changes,
		})
	}
	return out, nil
}

func (a *adminService) ExportConfig(ctx context.Context, _ *smsgwv1.ExportConfigRequest) (*smsgwv1.ExportConfigResponse, error) {
	raw, v, err := a.admin.Export(ctx)
	if err != nil {
		return nil, err
	}
	return &smsgwv1.ExportConfigResponse{Yaml: string(raw), Version: v}, nil
}

func (a *adminService) ImportConfig(ctx context.Context, req *smsgwv1.ImportConfigRequest) (*smsgwv1.ImportConfigResponse, error) {
	if req.GetYaml() == "" {
		return nil, smsgw.Errorf(smsgw.EINVALID, "yaml is required: the configuration file to import")
	}
	changes, v, err := a.admin.Import(ctx, who(ctx), []byte(req.GetYaml()), req.GetDryRun(), req.GetExpectedVersion())
	if err != nil {
		return nil, err
	}
	return &smsgwv1.ImportConfigResponse{Changes: changes, Version: v}, nil
}
