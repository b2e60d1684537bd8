package payloadcrypt

import (
	"context"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/proxy"
	"google.golang.org/protobuf/proto"
)

// Clear is the key ID CountKeys gives payloads that are not sealed.
const Clear = "(clear)"

// CountKeys adds to counts, per key ID, the payloads in msg (a history
// event, a workflow description, …) sealed with that key, and under Clear
// those that are not sealed. Search attributes are never sealed and are
// not counted. It reads metadata only: no key is needed.
func CountKeys(msg proto.Message, counts map[string]int) error {
	return proxy.VisitPayloads(context.Background(), msg, proxy.VisitPayloadsOptions{
		SkipSearchAttributes: true,
		Visitor: func(_ *proxy.VisitPayloadsContext, ps []*commonpb.Payload) ([]*commonpb.Payload, error) {
			for _, p := range ps {
				if string(p.GetMetadata()[MetadataEncoding]) == EncodingSealed {
					counts[string(p.GetMetadata()[MetadataKeyID])]++
				} else {
					counts[Clear]++
				}
			}
			return ps, nil
		},
	})
}
