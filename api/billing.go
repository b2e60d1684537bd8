package api

import (
	"context"
	"crypto/subtle"
	"fmt"
	"strings"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/timestamppb"

	smsgw "github.com/smsgw/smsgw"
	smsgwv1 "github.com/smsgw/smsgw/proto/smsgw/v1"
)

// BillingAccounts says how a customer is billed.
type BillingAccounts interface {
	// BillingAccount is the currency of the customer's price list and
	// whether it is prepaid; ok is false when no price list applies to it.
	BillingAccount(customerID string) (currency string, prepaid, ok bool)
}

// BillingDeps serve BillingService.
type BillingDeps struct {
	Ledger   smsgw.Ledger
	Accounts BillingAccounts
	// OperatorKeyHash is the hex SHA-256 of the key that authorises
	// top-ups (smsgw.HashAPIKey); empty refuses every top-up over the API
	// (`smsgw billing topup` writes the ledger directly).
	OperatorKeyHash string
}

// operatorMethod is a method an operator calls with the billing operator
// key instead of a customer's API key.
func operatorMethod(fullMethod string) bool {
	return fullMethod == smsgwv1.BillingService_TopUp_FullMethodName
}

// authenticateOperator checks the `authorization: Bearer <key>` metadata
// against the billing operator key.
func (i *interceptor) authenticateOperator(ctx context.Context) error {
	if i.operatorKeyHash == "" {
		return smsgw.Errorf(smsgw.EUNAUTHORIZED, "top-ups over the API are disabled on this gateway (no billing operator key); use `smsgw billing topup`")
	}
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get("authorization")
	if len(vals) == 0 {
		return smsgw.Errorf(smsgw.EUNAUTHORIZED, "missing operator key: send the header Authorization: Bearer <key>")
	}
	key, ok := bearerToken(vals[0])
	if !ok || subtle.ConstantTimeCompare([]byte(smsgw.HashAPIKey(key)), []byte(strings.ToLower(i.operatorKeyHash))) != 1 {
		return smsgw.Errorf(smsgw.EUNAUTHORIZED, "invalid operator key")
	}
	return nil
}

func registerBilling(s *grpc.Server, d *BillingDeps) error {
	if d == nil {
		return nil
	}
	if d.Ledger == nil || d.Accounts == nil {
		return fmt.Errorf("api: BillingDeps needs Ledger and Accounts")
	}
	smsgwv1.RegisterBillingServiceServer(s, &billingService{deps: d})
	return nil
}

func registerBillingGateway(ctx context.Context, mux *runtime.ServeMux, conn grpc.ClientConnInterface, d *BillingDeps) error {
	if d == nil {
		return nil
	}
	if err := smsgwv1.RegisterBillingServiceHandlerClient(ctx, mux, smsgwv1.NewBillingServiceClient(conn)); err != nil {
		return fmt.Errorf("api: register billing REST gateway: %w", err)
	}
	return nil
}

// billingService implements smsgwv1.BillingService.
type billingService struct {
	smsgwv1.UnimplementedBillingServiceServer
	deps *BillingDeps
}

func (b *billingService) GetBalance(ctx context.Context, _ *smsgwv1.GetBalanceRequest) (*smsgwv1.GetBalanceResponse, error) {
	id, err := customerID(ctx)
	if err != nil {
		return nil, err
	}
	currency, prepaid, ok := b.deps.Accounts.BillingAccount(id)
	if !ok {
		return nil, smsgw.Errorf(smsgw.ECONFLICT, "the account is not billed by a price list, so it has no balance")
	}
	bal, err := b.deps.Ledger.Balance(ctx, id, currency)
	if err != nil {
		return nil, smsgw.Unavailable("billing ledger", err)
	}
	return &smsgwv1.GetBalanceResponse{Balance: balanceProto(bal, prepaid)}, nil
}

func (b *billingService) TopUp(ctx context.Context, req *smsgwv1.TopUpRequest) (*smsgwv1.TopUpResponse, error) {
	id := req.GetCustomerId()
	currency, prepaid, ok := b.deps.Accounts.BillingAccount(id)
	if !ok {
		return nil, smsgw.Errorf(smsgw.ENOTFOUND, "customer %q is not billed by a price list", id)
	}
	if c := req.GetCurrency(); c != "" && c != currency {
		return nil, smsgw.Errorf(smsgw.EINVALID, "currency %q is not the customer's (%s)", c, currency)
	}
	amount, err := smsgw.ParseMicros(req.GetAmount())
	if err != nil {
		return nil, smsgw.Errorf(smsgw.EINVALID, "amount: %v", err)
	}
	if amount <= 0 {
		return nil, smsgw.Errorf(smsgw.EINVALID, "amount must be positive")
	}
	if req.GetReference() == "" {
		return nil, smsgw.Errorf(smsgw.EINVALID, "reference is required (an invoice or payment ID): a top-up is applied once per reference")
	}
	m, err := b.deps.Ledger.TopUp(ctx, id, currency, req.GetReference(), amount, time.Now().UTC())
	if err != nil {
		if smsgw.ErrorCode(err) == smsgw.EINVALID {
			return nil, err
		}
		return nil, smsgw.Unavailable("billing ledger", err)
	}
	if !m.New && m.Amount != amount {
		return nil, smsgw.Errorf(smsgw.ECONFLICT, "reference %q was used for a top-up of %s %s", req.GetReference(), smsgw.FormatMicros(m.Amount), m.Currency)
	}
	bal, err := b.deps.Ledger.Balance(ctx, id, currency)
	if err != nil {
		return nil, smsgw.Unavailable("billing ledger", err)
	}
	return &smsgwv1.TopUpResponse{Balance: balanceProto(bal, prepaid), Applied: m.New}, nil
}

func balanceProto(b smsgw.Balance, prepaid bool) *smsgwv1.Balance {
	p := &smsgwv1.Balance{
		CustomerId: b.CustomerID, Currency: b.Currency,
		Balance: smsgw.FormatMicros(b.Balance), Reserved: smsgw.FormatMicros(b.Reserved), Available: smsgw.FormatMicros(b.Available()),
		BalanceMicros: b.Balance, ReservedMicros: b.Reserved, AvailableMicros: b.Available(),
		Prepaid: prepaid,
	}
	if !b.UpdatedAt.IsZero() {
		p.UpdatedAt = timestamppb.New(b.UpdatedAt)
	}
	return p
}
