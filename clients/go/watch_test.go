package herald_test

// Watch and Error against an in-process fake of the service, scripted stream by stream:
// what Watch asks for on each reconnection and what it yields.

import (
	"context"
	"errors"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/types/known/durationpb"

	herald "github.com/herald-webhooks/herald/clients/go"
	"github.com/herald-webhooks/herald/clients/go/heraldv1"
)

// script is what the fake answers on one stream: these items, then this error.
type script struct {
	items []*heraldv1.StreamDeliveryStatusResponse
	err   error
}

type fakeService struct {
	heraldv1.UnimplementedWebhookServiceServer
	mu      sync.Mutex
	scripts []script
	// requests records every stream request, for the cursor it resumed after.
	requests []*heraldv1.StreamDeliveryStatusRequest
	// authorization records the metadata of the last call.
	authorization []string
}

func (f *fakeService) StreamDeliveryStatus(req *heraldv1.StreamDeliveryStatusRequest, stream grpc.ServerStreamingServer[heraldv1.StreamDeliveryStatusResponse]) error {
	f.mu.Lock()
	f.requests = append(f.requests, req)
	if len(f.scripts) == 0 {
		f.mu.Unlock()
		<-stream.Context().Done() // nothing more to say: stay open until the client leaves
		return nil
	}
	next := f.scripts[0]
	f.scripts = f.scripts[1:]
	f.mu.Unlock()
	for _, item := range next.items {
		if err := stream.Send(item); err != nil {
			return err
		}
	}
	return next.err
}

func (f *fakeService) Publish(ctx context.Context, _ *heraldv1.PublishRequest) (*heraldv1.PublishResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	f.mu.Lock()
	f.authorization = md.Get("authorization")
	f.mu.Unlock()
	st, err := status.New(codes.ResourceExhausted, "publish rate exceeded").WithDetails(
		&errdetails.RetryInfo{RetryDelay: durationpb.New(1500 * time.Millisecond)},
		&errdetails.ErrorInfo{Reason: "PUBLISH_LIMITED", Domain: "herald"},
	)
	if err != nil {
		return nil, err
	}
	return nil, st.Err()
}

func startFake(t *testing.T, f *fakeService) *herald.Client {
	t.Helper()
	listener := bufconn.Listen(1 << 20)
	server := grpc.NewServer()
	heraldv1.RegisterWebhookServiceServer(server, f)
	go func() { _ = server.Serve(listener) }()
	t.Cleanup(server.Stop)
	client, err := herald.New("passthrough:///fake",
		herald.WithAPIKey("test-key"),
		herald.WithTenant("acme"),
		herald.WithWatchBackoff(herald.Backoff{Initial: time.Millisecond, Max: 10 * time.Millisecond}),
		herald.WithDialOptions(
			grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
				return listener.DialContext(ctx)
			}),
			grpc.WithTransportCredentials(insecure.NewCredentials()),
		),
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	return client
}

func event(cursor uint64) *heraldv1.StreamDeliveryStatusResponse {
	return &heraldv1.StreamDeliveryStatusResponse{Item: &heraldv1.StreamDeliveryStatusResponse_Event{
		Event: &heraldv1.DeliveryStatusEvent{Cursor: cursor, MessageId: "msg"},
	}}
}

func heartbeat(cursor uint64) *heraldv1.StreamDeliveryStatusResponse {
	return &heraldv1.StreamDeliveryStatusResponse{Item: &heraldv1.StreamDeliveryStatusResponse_Heartbeat{
		Heartbeat: &heraldv1.Heartbeat{Cursor: cursor},
	}}
}

func tooSlow(resumeAfter string) error {
	st, err := status.New(codes.ResourceExhausted, "consumer too slow").WithDetails(
		&errdetails.ErrorInfo{Reason: "CONSUMER_TOO_SLOW", Domain: "herald",
			Metadata: map[string]string{"resume_after_cursor": resumeAfter}},
		&errdetails.RetryInfo{RetryDelay: durationpb.New(0)},
	)
	if err != nil {
		panic(err)
	}
	return st.Err()
}

// take ranges over Watch until n events or an error, within a deadline.
func take(t *testing.T, client *herald.Client, req herald.WatchRequest, n int) ([]uint64, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var got []uint64
	for event, err := range client.Watch(ctx, req) {
		if err != nil {
			return got, err
		}
		got = append(got, event.GetCursor())
		if len(got) == n {
			break
		}
	}
	return got, nil
}

func TestWatchResumesWithoutDuplicates(t *testing.T) {
	fake := &fakeService{scripts: []script{
		// Cut off as too slow after two events: resume after 2.
		{items: []*heraldv1.StreamDeliveryStatusResponse{event(1), event(2)}, err: tooSlow("2")},
		// The server replays 2 again (at-least-once on its side): skipped.
		{items: []*heraldv1.StreamDeliveryStatusResponse{event(2), event(3), heartbeat(5)},
			err: status.Error(codes.Unavailable, "connection reset")},
		// Resumes after the heartbeat's cursor; the server ending the stream is not the end.
		{items: []*heraldv1.StreamDeliveryStatusResponse{event(6)}},
		{items: []*heraldv1.StreamDeliveryStatusResponse{event(7)}},
	}}
	client := startFake(t, fake)
	got, err := take(t, client, herald.WatchRequest{EndpointIDs: []string{"ep"}}, 5)
	if err != nil {
		t.Fatal(err)
	}
	if want := []uint64{1, 2, 3, 6, 7}; !slices.Equal(got, want) {
		t.Fatalf("cursors %v, want %v", got, want)
	}
	fake.mu.Lock()
	defer fake.mu.Unlock()
	var after []any
	for _, req := range fake.requests[:4] {
		if req.AfterCursor == nil {
			after = append(after, nil)
		} else {
			after = append(after, req.GetAfterCursor())
		}
		if req.GetTenantId() != "acme" || !slices.Equal(req.GetEndpointIds(), []string{"ep"}) {
			t.Fatalf("request lost its filter: %v", req)
		}
	}
	if want := []any{nil, uint64(2), uint64(5), uint64(6)}; !slices.Equal(after, want) {
		t.Fatalf("resumed after %v, want %v", after, want)
	}
}

func TestWatchAdoptsTheServersResumeCursorWhenItHasNone(t *testing.T) {
	fake := &fakeService{scripts: []script{
		{err: tooSlow("41")},
		{items: []*heraldv1.StreamDeliveryStatusResponse{event(42)}},
	}}
	client := startFake(t, fake)
	if _, err := take(t, client, herald.WatchRequest{}, 1); err != nil {
		t.Fatal(err)
	}
	fake.mu.Lock()
	defer fake.mu.Unlock()
	if got := fake.requests[1].GetAfterCursor(); got != 41 {
		t.Fatalf("resumed after %d, want 41", got)
	}
}

func TestWatchStopsOnAnErrorNoRetryCures(t *testing.T) {
	fake := &fakeService{scripts: []script{
		{items: []*heraldv1.StreamDeliveryStatusResponse{event(1)},
			err: status.Error(codes.OutOfRange, "cursor no longer retained")},
	}}
	client := startFake(t, fake)
	got, err := take(t, client, herald.WatchRequest{}, 2)
	var e *herald.Error
	if !errors.As(err, &e) || e.Code != codes.OutOfRange {
		t.Fatalf("want OUT_OF_RANGE, got %v", err)
	}
	if !slices.Equal(got, []uint64{1}) {
		t.Fatalf("cursors %v", got)
	}
}

func TestWatchEndsWithItsContext(t *testing.T) {
	client := startFake(t, &fakeService{})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	for _, err := range client.Watch(ctx, herald.WatchRequest{}) {
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("want context.Canceled, got %v", err)
		}
		return
	}
	t.Fatal("watch ended without an error")
}

func TestErrorCarriesRetryInfoAndErrorInfo(t *testing.T) {
	fake := &fakeService{}
	client := startFake(t, fake)
	_, err := client.Publish(t.Context(), herald.Event{Type: "a.b", Payload: herald.JSON(map[string]int{"n": 1})})
	var e *herald.Error
	if !errors.As(err, &e) {
		t.Fatalf("want *herald.Error, got %T %v", err, err)
	}
	if e.Code != codes.ResourceExhausted || !e.HasRetryDelay || e.RetryDelay != 1500*time.Millisecond ||
		e.Reason != "PUBLISH_LIMITED" {
		t.Fatalf("details lost: %+v", e)
	}
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("status.Code sees %s", status.Code(err))
	}
	fake.mu.Lock()
	defer fake.mu.Unlock()
	if !slices.Equal(fake.authorization, []string{"Bearer test-key"}) {
		t.Fatalf("authorization %v", fake.authorization)
	}
}
