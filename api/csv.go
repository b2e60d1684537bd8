package api

import (
	"context"
	"encoding/csv"
	"log/slog"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/grpc-ecosystem/grpc-gateway/v2/utilities"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	smsgw "github.com/smsgw/smsgw"
	smsgwv1 "github.com/smsgw/smsgw/proto/smsgw/v1"
)

// REST paths that answer CSV to Accept: text/csv.
const (
	messagesPath      = "/v1/messages"
	usagePath         = "/v1/usage"
	adminMessagesPath = "/v1/admin/messages"
	adminUsagePath    = "/v1/admin/usage"
)

// csvExport answers GET /v1/messages and GET /v1/usage (and their
// operators' forms under /v1/admin/) in CSV when the request accepts
// text/csv. It calls the services over the gateway's in-process
// connection, with the request's headers as metadata, so the interceptors
// authenticate, log and count it as they do the JSON form; a search is
// streamed a page at a time until its last page.
type csvExport struct {
	gw       *runtime.ServeMux
	client   smsgwv1.TrafficServiceClient
	operator smsgwv1.OperatorTrafficServiceClient // nil: the operators' routes are not served
	log      *slog.Logger
}

// or serves the CSV requests and hands every other request to next.
func (c *csvExport) or(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || !acceptsCSV(r) {
			next.ServeHTTP(w, r)
			return
		}
		switch {
		case r.URL.Path == messagesPath:
			c.messages(w, r)
		case r.URL.Path == usagePath:
			c.usage(w, r)
		case r.URL.Path == adminMessagesPath && c.operator != nil:
			c.allMessages(w, r)
		case r.URL.Path == adminUsagePath && c.operator != nil:
			c.allUsage(w, r)
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// acceptsCSV tells whether the Accept header names text/csv.
func acceptsCSV(r *http.Request) bool {
	for _, h := range r.Header.Values("Accept") {
		for _, part := range strings.Split(h, ",") {
			if mt, _, err := mime.ParseMediaType(strings.TrimSpace(part)); err == nil && mt == "text/csv" {
				return true
			}
		}
	}
	return false
}

// messageColumns is the header of the messages CSV; the operators' form
// has customer_id after id.
var messageColumns = []string{
	"id", "status", "from", "to", "connector_id", "segments", "encoding", "client_ref", "entry_point", "upstream_id",
	"error_code", "error_text", "accepted_at", "sent_at", "done_at",
}

// searchPage is a page of either service's search.
type searchPage interface {
	GetMessages() []*smsgwv1.FoundMessage
	GetNextPageToken() string
}

// messages streams every page of a customer's search from the request's
// page on, MaxMessagePageSize messages a call unless the request sets
// pageSize.
func (c *csvExport) messages(w http.ResponseWriter, r *http.Request) {
	req := &smsgwv1.SearchMessagesRequest{}
	ctx, ok := c.prepare(w, r, req, "/smsgw.v1.TrafficService/SearchMessages", messagesPath)
	if !ok {
		return
	}
	if req.PageSize == 0 {
		req.PageSize = smsgw.MaxMessagePageSize
	}
	c.streamMessages(ctx, w, r, false, func(token string) (searchPage, error) {
		req.PageToken = token
		return c.client.SearchMessages(ctx, req)
	}, req.PageToken)
}

// allMessages is messages for an operator's search.
func (c *csvExport) allMessages(w http.ResponseWriter, r *http.Request) {
	req := &smsgwv1.SearchAllMessagesRequest{}
	ctx, ok := c.prepare(w, r, req, "/smsgw.v1.OperatorTrafficService/SearchAllMessages", adminMessagesPath)
	if !ok {
		return
	}
	if req.PageSize == 0 {
		req.PageSize = smsgw.MaxMessagePageSize
	}
	c.streamMessages(ctx, w, r, true, func(token string) (searchPage, error) {
		req.PageToken = token
		return c.operator.SearchAllMessages(ctx, req)
	}, req.PageToken)
}

// streamMessages writes the pages of a search from the one at token on;
// withCustomer adds the customer_id column.
func (c *csvExport) streamMessages(ctx context.Context, w http.ResponseWriter, r *http.Request, withCustomer bool, search func(token string) (searchPage, error), token string) {
	page, err := search(token)
	if err != nil {
		c.fail(ctx, w, r, err)
		return
	}
	columns := messageColumns
	if withCustomer {
		columns = slices.Insert(slices.Clone(columns), 1, "customer_id")
	}
	out := c.start(w, "messages.csv", columns)
	for {
		for _, f := range page.GetMessages() {
			m := f.GetMessage()
			row := []string{
				m.GetId(), statusText(m.GetStatus()), m.GetFrom(), m.GetTo(), m.GetConnectorId(), strconv.Itoa(int(m.GetSegments())),
				m.GetEncoding(), m.GetClientRef(), f.GetEntryPoint(), f.GetUpstreamId(), m.GetErrorCode(), m.GetErrorText(),
				csvTime(m.GetAcceptedAt()), csvTime(m.GetSentAt()), csvTime(m.GetDoneAt()),
			}
			if withCustomer {
				row = slices.Insert(row, 1, f.GetCustomerId())
			}
			out.Write(row)
		}
		out.Flush()
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		if page.GetNextPageToken() == "" {
			return
		}
		if page, err = search(page.GetNextPageToken()); err != nil {
			// The status is sent: cut the answer short, so the client
			// sees a broken transfer rather than a CSV that looks whole.
			c.log.WarnContext(ctx, "api: CSV export cut short", "path", r.URL.Path, "err", err)
			panic(http.ErrAbortHandler)
		}
	}
}

// usageColumns is the header of the usage CSV; the operators' form has
// customer_id after day. The refused submissions follow the messages, a
// row per day (and customer) and reason, with the status REFUSED and their
// count in messages.
var usageColumns = []string{"day", "entry_point", "connector_id", "status", "messages", "segments", "currency", "cost_micros", "refusal_reason"}

func (c *csvExport) usage(w http.ResponseWriter, r *http.Request) {
	req := &smsgwv1.GetUsageRequest{}
	ctx, ok := c.prepare(w, r, req, "/smsgw.v1.TrafficService/GetUsage", usagePath)
	if !ok {
		return
	}
	rep, err := c.client.GetUsage(ctx, req)
	if err != nil {
		c.fail(ctx, w, r, err)
		return
	}
	c.writeUsage(w, rep.GetRows(), rep.GetRefusals(), false)
}

// allUsage is usage for an operator's report.
func (c *csvExport) allUsage(w http.ResponseWriter, r *http.Request) {
	req := &smsgwv1.GetAllUsageRequest{}
	ctx, ok := c.prepare(w, r, req, "/smsgw.v1.OperatorTrafficService/GetAllUsage", adminUsagePath)
	if !ok {
		return
	}
	rep, err := c.operator.GetAllUsage(ctx, req)
	if err != nil {
		c.fail(ctx, w, r, err)
		return
	}
	c.writeUsage(w, rep.GetRows(), rep.GetRefusals(), true)
}

// writeUsage writes a usage report's rows; withCustomer adds the
// customer_id column.
func (c *csvExport) writeUsage(w http.ResponseWriter, rows []*smsgwv1.UsageRow, refusals []*smsgwv1.UsageRefusal, withCustomer bool) {
	columns := usageColumns
	if withCustomer {
		columns = slices.Insert(slices.Clone(columns), 1, "customer_id")
	}
	out := c.start(w, "usage.csv", columns)
	for _, row := range rows {
		line := []string{
			row.GetDay(), row.GetEntryPoint(), row.GetConnectorId(), statusText(row.GetStatus()),
			strconv.FormatInt(row.GetMessages(), 10), strconv.FormatInt(row.GetSegments(), 10),
			row.GetCurrency(), strconv.FormatInt(row.GetCostMicros(), 10), "",
		}
		if withCustomer {
			line = slices.Insert(line, 1, row.GetCustomerId())
		}
		out.Write(line)
	}
	for _, r := range refusals {
		line := []string{r.GetDay(), "", "", "REFUSED", strconv.FormatInt(r.GetRefusals(), 10), "0", "", "0", r.GetReason()}
		if withCustomer {
			line = slices.Insert(line, 1, r.GetCustomerId())
		}
		out.Write(line)
	}
	out.Flush()
}

// prepare reads the query parameters into req as the JSON route would, and
// makes the context of the gRPC call (the request's headers as metadata).
// It answers the error itself when it returns false.
func (c *csvExport) prepare(w http.ResponseWriter, r *http.Request, req proto.Message, fullMethod, path string) (context.Context, bool) {
	if err := r.ParseForm(); err != nil {
		c.fail(r.Context(), w, r, status.Errorf(codes.InvalidArgument, "query: %v", err))
		return nil, false
	}
	if err := runtime.PopulateQueryParameters(req, r.Form, utilities.NewDoubleArray(nil)); err != nil {
		c.fail(r.Context(), w, r, status.Errorf(codes.InvalidArgument, "%v", err))
		return nil, false
	}
	ctx, err := runtime.AnnotateContext(r.Context(), c.gw, r, fullMethod, runtime.WithHTTPPathPattern(path))
	if err != nil {
		c.fail(r.Context(), w, r, err)
		return nil, false
	}
	return ctx, true
}

// start writes the CSV's headers and its header row.
func (c *csvExport) start(w http.ResponseWriter, filename string, columns []string) *csv.Writer {
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="`+filename+`"`)
	out := csv.NewWriter(w)
	out.Write(columns)
	return out
}

// fail answers err as the JSON routes answer errors.
func (c *csvExport) fail(ctx context.Context, w http.ResponseWriter, r *http.Request, err error) {
	_, m := runtime.MarshalerForRequest(c.gw, r)
	runtime.HTTPError(ctx, c.gw, m, w, r, err)
}

// statusText is a status as the domain names it: DELIVERED.
func statusText(s smsgwv1.MessageStatus) string {
	if s == smsgwv1.MessageStatus_MESSAGE_STATUS_UNSPECIFIED {
		return ""
	}
	return strings.TrimPrefix(s.String(), "MESSAGE_STATUS_")
}

// csvTime is a time in RFC 3339 (UTC), or "" when unset.
func csvTime(ts *timestamppb.Timestamp) string {
	if ts == nil {
		return ""
	}
	return ts.AsTime().UTC().Format(time.RFC3339Nano)
}
