package herald_test

// The client against a real Herald: the binary named by HERALD_BIN, started on free
// ports with an in-memory store, delivering to this test's own HTTP receiver.

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	herald "github.com/herald-webhooks/herald/clients/go"
	"github.com/herald-webhooks/herald/clients/go/heraldv1"
	"github.com/herald-webhooks/herald/clients/go/webhookverify"
)

// liveDeadline bounds every wait of the live test.
const liveDeadline = 30 * time.Second

func TestLive(t *testing.T) {
	server := startHerald(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*liveDeadline)
	defer cancel()

	direct := newClient(t, server.grpcAddr, server.apiKey)
	// The resuming watch goes through a proxy the test can cut.
	proxy := startProxy(t, server.grpcAddr)
	viaProxy := newClient(t, proxy.addr(), server.apiKey)

	receiver := startReceiver(t)
	endpoint, secret, err := direct.RegisterEndpoint(ctx, &heraldv1.RegisterEndpointRequest{
		Url:         receiver.URL(),
		Description: "live test receiver",
		// Only the watched message reaches the receiver; later publishes use other types.
		EventTypes: []string{"invoice.*"},
	})
	if err != nil {
		t.Fatalf("register: %v", err)
	}

	// Both watches start after cursor 0: the server is fresh, so they see every event of
	// the endpoint, whether or not their stream was open before the publish.
	zero := uint64(0)
	watch := herald.WatchRequest{EndpointIDs: []string{endpoint.GetId()}, AfterCursor: &zero}
	reference := collect(ctx, direct, watch)
	resumed := collect(ctx, viaProxy, watch)

	published, err := direct.Publish(ctx, herald.Event{
		Type:           "invoice.paid",
		Payload:        herald.JSON(map[string]any{"invoice": "inv_1", "amount": 4200}),
		IdempotencyKey: "live-1",
		Metadata:       map[string]string{"source": "go-live-test"},
	})
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	if published.GetDeliveryCount() != 1 {
		t.Fatalf("delivery count %d, want 1", published.GetDeliveryCount())
	}
	messageID := published.GetMessageId()

	// The first attempt is held until the resuming watch has seen its start and lost
	// its stream; it then fails, so the retry and its success happen across the drop.
	first := receiver.next(t)
	started := resumed.next(t)
	if started.GetKind() != heraldv1.StatusEventKind_STATUS_EVENT_KIND_ATTEMPT_STARTED ||
		started.GetMessageId() != messageID {
		t.Fatalf("first event %v, want the attempt's start", started)
	}
	proxy.cut()
	first.answer <- http.StatusInternalServerError
	second := receiver.next(t)
	second.answer <- http.StatusNoContent

	for _, request := range []received{first, second} {
		if err := webhookverify.Verify(secret, request.header, request.body, webhookverify.DefaultTolerance); err != nil {
			t.Fatalf("verify: %v", err)
		}
		if request.header.Get("webhook-id") != messageID {
			t.Fatalf("webhook-id %q, want %s", request.header.Get("webhook-id"), messageID)
		}
	}
	if err := webhookverify.Verify(secret, first.header, append(first.body, ' '), time.Minute); !errors.Is(err, webhookverify.ErrNoMatch) {
		t.Fatalf("a changed body verified: %v", err)
	}

	want := reference.untilSucceeded(t, messageID, nil)
	got := resumed.untilSucceeded(t, messageID, started)
	if !slices.Equal(cursors(got), cursors(want)) {
		t.Fatalf("resumed watch saw cursors %v, the uninterrupted one %v", cursors(got), cursors(want))
	}
	kinds := make([]heraldv1.StatusEventKind, 0, len(got))
	for _, event := range got {
		kinds = append(kinds, event.GetKind())
	}
	for _, kind := range []heraldv1.StatusEventKind{
		heraldv1.StatusEventKind_STATUS_EVENT_KIND_ATTEMPT_FAILED,
		heraldv1.StatusEventKind_STATUS_EVENT_KIND_ATTEMPT_SUCCEEDED,
	} {
		if !slices.Contains(kinds, kind) {
			t.Fatalf("events %v lack %v", kinds, kind)
		}
	}
	if proxy.connections() < 2 {
		t.Fatalf("the resuming watch connected %d times, want a reconnection", proxy.connections())
	}

	t.Run("bad argument surfaces its field violation", func(t *testing.T) {
		_, err := direct.Publish(ctx, herald.Event{Type: "bad type!", Payload: herald.JSON(1)})
		assertFieldViolation(t, err, "event_type")

		results, err := direct.PublishBatch(ctx, []herald.Event{
			{Type: "order.created", Payload: herald.Raw([]byte("plain"), "text/plain")},
			{Type: "bad type!", Payload: herald.JSON(2)},
		})
		if err != nil {
			t.Fatalf("batch: %v", err)
		}
		if len(results) != 2 || results[0].Err != nil || results[0].Published.GetMessageId() == "" {
			t.Fatalf("batch results %+v", results)
		}
		assertFieldViolation(t, results[1].Err, "requests[1].event_type")
	})

	t.Run("endpoint management", func(t *testing.T) {
		for _, id := range []string{"ep-a", "ep-b"} {
			if _, _, err := direct.RegisterEndpoint(ctx, &heraldv1.RegisterEndpointRequest{
				EndpointId: id, Url: receiver.URL(), Disabled: true,
			}); err != nil {
				t.Fatalf("register %s: %v", id, err)
			}
		}
		var ids []string
		for endpoint, err := range direct.Endpoints(ctx, 1) {
			if err != nil {
				t.Fatalf("list: %v", err)
			}
			ids = append(ids, endpoint.GetId())
		}
		slices.Sort(ids)
		if want := slices.Sorted(slices.Values([]string{"ep-a", "ep-b", endpoint.GetId()})); !slices.Equal(ids, want) {
			t.Fatalf("listed %v", ids)
		}

		updated, err := direct.UpdateEndpoint(ctx, &heraldv1.Endpoint{Id: "ep-a", Description: "renamed"}, "description")
		if err != nil || updated.GetDescription() != "renamed" {
			t.Fatalf("update: %v, %v", updated, err)
		}
		got, err := direct.GetEndpoint(ctx, "ep-a")
		if err != nil || got.GetDescription() != "renamed" {
			t.Fatalf("get: %v, %v", got, err)
		}
		_, rotated, err := direct.RotateEndpointSecret(ctx, "ep-a", 0)
		if err != nil || rotated == "" {
			t.Fatalf("rotate: %q, %v", rotated, err)
		}
		if _, err := direct.DeleteEndpoint(ctx, "ep-a"); err != nil {
			t.Fatalf("delete: %v", err)
		}
		_, err = direct.GetEndpoint(ctx, "ep-a")
		var e *herald.Error
		if !errors.As(err, &e) || e.Code != codes.NotFound {
			t.Fatalf("get after delete: %v", err)
		}
	})
}

func assertFieldViolation(t *testing.T, err error, field string) {
	t.Helper()
	var e *herald.Error
	if !errors.As(err, &e) {
		t.Fatalf("want *herald.Error, got %T %v", err, err)
	}
	if e.Code != codes.InvalidArgument {
		t.Fatalf("code %s, want InvalidArgument", e.Code)
	}
	for _, v := range e.FieldViolations {
		if v.Field == field && v.Description != "" {
			return
		}
	}
	t.Fatalf("no violation of %s in %+v", field, e.FieldViolations)
}

func newClient(t *testing.T, addr, apiKey string) *herald.Client {
	t.Helper()
	client, err := herald.New(addr, herald.WithAPIKey(apiKey), herald.WithTimeout(liveDeadline))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	return client
}

// liveServer is a running server and the admin key it accepts.
type liveServer struct {
	grpcAddr string
	apiKey   string
}

// startHerald runs HERALD_BIN on free ports, with extraEnv (`NAME=value`) added to the
// usual environment, and waits for it to log its address.
func startHerald(t *testing.T, extraEnv ...string) liveServer {
	t.Helper()
	bin := os.Getenv("HERALD_BIN")
	if bin == "" {
		t.Skip("SKIPPED: HERALD_BIN is not set; the live test needs a Herald binary")
	}
	key := make([]byte, 24)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	apiKey := hex.EncodeToString(key)
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(),
		"WEBHOOK_GRPC_ADDR=127.0.0.1:0",
		"WEBHOOK_ADMIN_ADDR=127.0.0.1:0",
		"WEBHOOK_STORAGE_TYPE=memory",
		"WEBHOOK_LOG_FORMAT=json",
		"WEBHOOK_ADMIN_API_KEY="+apiKey,
		"WEBHOOK_EGRESS_ALLOW_CIDRS=127.0.0.0/8",
		"WEBHOOK_RETRY_INITIAL_DELAY=100ms",
		"WEBHOOK_RETRY_MIN_DELAY=0",
	)
	cmd.Env = append(cmd.Env, extraEnv...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})

	addr := make(chan string, 1)
	go func() {
		lines := bufio.NewScanner(stderr)
		lines.Buffer(make([]byte, 64*1024), 1024*1024)
		for lines.Scan() {
			var line struct {
				Message string `json:"message"`
				GRPC    string `json:"grpc"`
			}
			if json.Unmarshal(lines.Bytes(), &line) == nil && line.Message == "herald serving" {
				addr <- line.GRPC
			}
		}
		// Keep draining so the server never blocks on a full pipe.
		_, _ = io.Copy(io.Discard, stderr)
	}()
	select {
	case a := <-addr:
		return liveServer{grpcAddr: a, apiKey: apiKey}
	case <-time.After(liveDeadline):
		t.Fatalf("%s did not log `herald serving` within %s", bin, liveDeadline)
	}
	return liveServer{}
}

// received is one webhook request; the handler answers with the status sent on answer.
type received struct {
	header http.Header
	body   []byte
	answer chan int
}

type receiver struct {
	server   *httptest.Server
	requests chan received
}

func startReceiver(t *testing.T) *receiver {
	t.Helper()
	r := &receiver{requests: make(chan received, 16)}
	r.server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(req.Body)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		request := received{header: req.Header.Clone(), body: body, answer: make(chan int, 1)}
		r.requests <- request
		select {
		case status := <-request.answer:
			w.WriteHeader(status)
		case <-time.After(liveDeadline):
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(r.server.Close)
	return r
}

func (r *receiver) URL() string { return r.server.URL + "/hook" }

func (r *receiver) next(t *testing.T) received {
	t.Helper()
	select {
	case request := <-r.requests:
		return request
	case <-time.After(liveDeadline):
		t.Fatal("no webhook arrived")
	}
	return received{}
}

// watched feeds a Watch's events into a channel the test reads with deadlines.
type watched struct {
	events chan *heraldv1.DeliveryStatusEvent
	errs   chan error
}

func collect(ctx context.Context, client *herald.Client, req herald.WatchRequest) *watched {
	w := &watched{events: make(chan *heraldv1.DeliveryStatusEvent, 256), errs: make(chan error, 1)}
	go func() {
		for event, err := range client.Watch(ctx, req) {
			if err != nil {
				w.errs <- err
				return
			}
			w.events <- event
		}
	}()
	return w
}

func (w *watched) next(t *testing.T) *heraldv1.DeliveryStatusEvent {
	t.Helper()
	select {
	case event := <-w.events:
		return event
	case err := <-w.errs:
		t.Fatalf("watch ended: %v", err)
	case <-time.After(liveDeadline):
		t.Fatal("no status event arrived")
	}
	return nil
}

// untilSucceeded reads events (after those already read, given as first) up to the
// success of message.
func (w *watched) untilSucceeded(t *testing.T, message string, first *heraldv1.DeliveryStatusEvent) []*heraldv1.DeliveryStatusEvent {
	t.Helper()
	var events []*heraldv1.DeliveryStatusEvent
	if first != nil {
		events = append(events, first)
	}
	for {
		event := w.next(t)
		events = append(events, event)
		if event.GetMessageId() == message &&
			event.GetKind() == heraldv1.StatusEventKind_STATUS_EVENT_KIND_ATTEMPT_SUCCEEDED {
			return events
		}
	}
}

func cursors(events []*heraldv1.DeliveryStatusEvent) []uint64 {
	out := make([]uint64, 0, len(events))
	for _, e := range events {
		out = append(out, e.GetCursor())
	}
	return out
}

// proxy forwards TCP connections to a target and can cut every open one at once, as a
// network failure would.
type proxy struct {
	listener net.Listener
	mu       sync.Mutex
	open     []net.Conn
	accepted int
}

func startProxy(t *testing.T, target string) *proxy {
	t.Helper()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{listener: listener}
	t.Cleanup(func() {
		_ = listener.Close()
		p.cut()
	})
	go func() {
		for {
			client, err := listener.Accept()
			if err != nil {
				return
			}
			upstream, err := net.DialTimeout("tcp", target, liveDeadline)
			if err != nil {
				_ = client.Close()
				continue
			}
			p.mu.Lock()
			p.open = append(p.open, client, upstream)
			p.accepted++
			p.mu.Unlock()
			go pipe(client, upstream)
			go pipe(upstream, client)
		}
	}()
	return p
}

func pipe(dst, src net.Conn) {
	_, _ = io.Copy(dst, src)
	_ = dst.Close()
	_ = src.Close()
}

func (p *proxy) addr() string { return p.listener.Addr().String() }

func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, conn := range p.open {
		_ = conn.Close()
	}
	p.open = nil
}

func (p *proxy) connections() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepted
}
