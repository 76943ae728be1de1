package herald

import (
	"context"
	"encoding/json"
	"fmt"

	"google.golang.org/protobuf/types/known/structpb"

	"github.com/herald-webhooks/herald/clients/go/heraldv1"
)

// Event is one event to publish.
type Event struct {
	// Type is a dotted lowercase name: `invoice.paid`.
	Type string
	// Payload is the body of every webhook request: JSON(v), Raw(data, type) or
	// Value(v).
	Payload Payload
	// IdempotencyKey makes a repeated publish return the first message and create
	// nothing.
	IdempotencyKey string
	// Channels, when set, restrict delivery to endpoints subscribed to one of them (or
	// to none).
	Channels []string
	// Metadata are free-form labels kept with the message.
	Metadata map[string]string
	// Tenant overrides the client's default tenant.
	Tenant string
}

// Payload is the body of an event. Make one with JSON, Raw or Value.
type Payload struct {
	raw   *heraldv1.RawPayload
	value *structpb.Value
	err   error
}

// JSON encodes v with encoding/json. It travels as raw bytes with content type
// `application/json`, so integers beyond 2^53 and key order arrive exactly as encoded
// (a google.protobuf.Value would carry every number as a double).
func JSON(v any) Payload {
	data, err := json.Marshal(v)
	if err != nil {
		return Payload{err: fmt.Errorf("encoding payload: %w", err)}
	}
	return Raw(data, "application/json")
}

// Raw sends data unchanged with its content type (`application/json` when empty).
func Raw(data []byte, contentType string) Payload {
	return Payload{raw: &heraldv1.RawPayload{Data: data, ContentType: contentType}}
}

// Value sends a google.protobuf.Value, which Herald writes as compact JSON.
func Value(v *structpb.Value) Payload {
	return Payload{value: v}
}

func (c *Client) publishRequest(e Event) (*heraldv1.PublishRequest, error) {
	if e.Payload.err != nil {
		return nil, e.Payload.err
	}
	req := &heraldv1.PublishRequest{
		EventType:      e.Type,
		IdempotencyKey: e.IdempotencyKey,
		Channels:       e.Channels,
		Metadata:       e.Metadata,
		TenantId:       c.tenantOr(e.Tenant),
	}
	switch {
	case e.Payload.raw != nil:
		req.Payload = &heraldv1.PublishRequest_Raw{Raw: e.Payload.raw}
	case e.Payload.value != nil:
		req.Payload = &heraldv1.PublishRequest_Json{Json: e.Payload.value}
	}
	return req, nil
}

// Publish stores the event and creates its deliveries; a nil error means both are
// durable.
//
// Errors: *Error (INVALID_ARGUMENT with field violations, RESOURCE_EXHAUSTED with a
// retry delay, ...), or the payload's encoding error.
func (c *Client) Publish(ctx context.Context, e Event) (*heraldv1.PublishResponse, error) {
	req, err := c.publishRequest(e)
	if err != nil {
		return nil, err
	}
	ctx, cancel := c.unary(ctx)
	defer cancel()
	resp, err := c.RPC.Publish(ctx, req)
	return resp, fromRPC(err)
}

// BatchResult is the outcome of one event of a batch: Published, or Err (an *Error).
type BatchResult struct {
	Published *heraldv1.PublishResponse
	Err       error
}

// PublishBatch publishes up to 1,000 events in one call; each has its own result, in
// order.
//
// Errors: the call's own failure (*Error), or an event's payload encoding error; a
// refused event is reported in its BatchResult.
func (c *Client) PublishBatch(ctx context.Context, events []Event) ([]BatchResult, error) {
	batch := &heraldv1.PublishBatchRequest{Requests: make([]*heraldv1.PublishRequest, 0, len(events))}
	for i, e := range events {
		req, err := c.publishRequest(e)
		if err != nil {
			return nil, fmt.Errorf("event %d: %w", i, err)
		}
		batch.Requests = append(batch.Requests, req)
	}
	ctx, cancel := c.unary(ctx)
	defer cancel()
	resp, err := c.RPC.PublishBatch(ctx, batch)
	if err != nil {
		return nil, fromRPC(err)
	}
	results := make([]BatchResult, 0, len(resp.GetResults()))
	for _, r := range resp.GetResults() {
		if failure := r.GetError(); failure != nil {
			results = append(results, BatchResult{Err: fromPublishError(failure)})
		} else {
			results = append(results, BatchResult{Published: r.GetPublished()})
		}
	}
	return results, nil
}
