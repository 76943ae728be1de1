package herald

import (
	"context"
	"iter"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/herald-webhooks/herald/clients/go/heraldv1"
)

// RegisterEndpoint creates an endpoint and returns it with its `whsec_` signing secret,
// which is not shown again. An empty req.TenantId takes the client's default.
//
// Errors: *Error (INVALID_ARGUMENT naming each bad field, ALREADY_EXISTS for a taken
// id, ...).
func (c *Client) RegisterEndpoint(ctx context.Context, req *heraldv1.RegisterEndpointRequest) (*heraldv1.Endpoint, string, error) {
	ctx, cancel := c.unary(ctx)
	defer cancel()
	req = proto.CloneOf(req) // the caller's request stays as it was
	req.TenantId = c.tenantOr(req.GetTenantId())
	resp, err := c.RPC.RegisterEndpoint(ctx, req)
	if err != nil {
		return nil, "", fromRPC(err)
	}
	return resp.GetEndpoint(), resp.GetSecret(), nil
}

// GetEndpoint returns the endpoint with its live state.
//
// Errors: *Error (NOT_FOUND, also for another tenant's endpoint).
func (c *Client) GetEndpoint(ctx context.Context, id string) (*heraldv1.Endpoint, error) {
	ctx, cancel := c.unary(ctx)
	defer cancel()
	resp, err := c.RPC.GetEndpoint(ctx, &heraldv1.GetEndpointRequest{EndpointId: id, TenantId: c.tenant})
	return resp.GetEndpoint(), fromRPC(err)
}

// Endpoints yields every endpoint of the client's tenant, fetching pageSize at a time
// (the server's default when 0). Each page is one call with the client's timeout. It
// stops after the first error, which it yields.
func (c *Client) Endpoints(ctx context.Context, pageSize int32) iter.Seq2[*heraldv1.Endpoint, error] {
	return func(yield func(*heraldv1.Endpoint, error) bool) {
		token := ""
		for {
			page, err := c.endpointsPage(ctx, pageSize, token)
			if err != nil {
				yield(nil, err)
				return
			}
			for _, endpoint := range page.GetEndpoints() {
				if !yield(endpoint, nil) {
					return
				}
			}
			token = page.GetNextPageToken()
			if token == "" {
				return
			}
		}
	}
}

func (c *Client) endpointsPage(ctx context.Context, pageSize int32, token string) (*heraldv1.ListEndpointsResponse, error) {
	ctx, cancel := c.unary(ctx)
	defer cancel()
	resp, err := c.RPC.ListEndpoints(ctx, &heraldv1.ListEndpointsRequest{
		PageSize: pageSize, PageToken: token, TenantId: c.tenant,
	})
	return resp, fromRPC(err)
}

// UpdateEndpoint replaces the named fields (`url`, `description`, `event_types`,
// `channels`, `headers`, `retry_policy`, `rate_limit`, `circuit_breaker`,
// `max_in_flight`, `enabled`) of the endpoint whose id is endpoint.Id.
//
// Errors: *Error (NOT_FOUND, INVALID_ARGUMENT naming each bad field).
func (c *Client) UpdateEndpoint(ctx context.Context, endpoint *heraldv1.Endpoint, fields ...string) (*heraldv1.Endpoint, error) {
	ctx, cancel := c.unary(ctx)
	defer cancel()
	resp, err := c.RPC.UpdateEndpoint(ctx, &heraldv1.UpdateEndpointRequest{
		Endpoint:   endpoint,
		UpdateMask: &fieldmaskpb.FieldMask{Paths: fields},
		TenantId:   c.tenant,
	})
	return resp.GetEndpoint(), fromRPC(err)
}

// DeleteEndpoint deletes the endpoint and returns how many pending deliveries that
// cancelled.
//
// Errors: *Error (NOT_FOUND).
func (c *Client) DeleteEndpoint(ctx context.Context, id string) (uint32, error) {
	ctx, cancel := c.unary(ctx)
	defer cancel()
	resp, err := c.RPC.DeleteEndpoint(ctx, &heraldv1.DeleteEndpointRequest{EndpointId: id, TenantId: c.tenant})
	return resp.GetCancelledDeliveries(), fromRPC(err)
}

// ServerDefaultGrace asks RotateEndpointSecret for the server's grace period.
const ServerDefaultGrace time.Duration = -1

// RotateEndpointSecret issues a new secret and returns it with the endpoint. The old
// secret keeps signing beside it for grace (ServerDefaultGrace: the server's; 0: stop
// at once), so receivers can switch without refusing a webhook.
//
// Errors: *Error (NOT_FOUND, INVALID_ARGUMENT).
func (c *Client) RotateEndpointSecret(ctx context.Context, id string, grace time.Duration) (*heraldv1.Endpoint, string, error) {
	ctx, cancel := c.unary(ctx)
	defer cancel()
	req := &heraldv1.RotateEndpointSecretRequest{EndpointId: id, TenantId: c.tenant}
	if grace >= 0 {
		req.GracePeriod = durationpb.New(grace)
	}
	resp, err := c.RPC.RotateEndpointSecret(ctx, req)
	if err != nil {
		return nil, "", fromRPC(err)
	}
	return resp.GetEndpoint(), resp.GetSecret(), nil
}
