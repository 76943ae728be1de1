package herald

import (
	"context"
	"errors"
	"io"
	"iter"
	"math/rand/v2"
	"strconv"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/herald-webhooks/herald/clients/go/heraldv1"
)

// WatchRequest chooses the status events Watch yields.
type WatchRequest struct {
	// Only events of these endpoints.
	EndpointIDs []string
	// Only events of messages of these types (exact names or `prefix.*`).
	EventTypes []string
	// Only events of this message.
	MessageID string
	// Only events of these kinds.
	Kinds []heraldv1.StatusEventKind
	// With MessageID: end once the message is settled on every endpoint.
	UntilSettled bool
	// Resume after this cursor (an event's, or one saved earlier); nil: from now on.
	AfterCursor *uint64
	// Overrides the client's default tenant.
	Tenant string
}

// Backoff paces Watch's reconnections: Initial after the first failure, doubling up to
// Max, each wait drawn from its upper half so that many watchers do not reconnect in
// step. A stream that delivered anything resets it.
type Backoff struct {
	Initial time.Duration
	Max     time.Duration
}

// DefaultBackoff is Watch's pacing unless WithWatchBackoff says otherwise.
var DefaultBackoff = Backoff{Initial: 100 * time.Millisecond, Max: 5 * time.Second}

// Watch yields delivery status events as they happen.
//
// It owns the stream's life: when the connection drops, the server ends the stream
// (shutdown) or cuts off a consumer that fell behind, Watch reconnects with backoff and
// asks for what came after the last cursor it saw (from an event or a heartbeat), so no
// retained event is missed and none is yielded twice. Heartbeats only move that cursor;
// they are not yielded.
//
// It ends when the consumer stops ranging, when UntilSettled is set and the message is
// settled, or after yielding one error: the context's end (errors.Is(err,
// context.Canceled)), or an *Error no retry can cure (PERMISSION_DENIED,
// INVALID_ARGUMENT, OUT_OF_RANGE for a cursor no longer retained, ...). While the
// server is unreachable it keeps trying: bound it with the context.
//
// A watch started from now that loses its stream before any event or heartbeat has no
// cursor yet; it then resumes from now, and events of that gap are not replayed.
func (c *Client) Watch(ctx context.Context, req WatchRequest) iter.Seq2[*heraldv1.DeliveryStatusEvent, error] {
	return func(yield func(*heraldv1.DeliveryStatusEvent, error) bool) {
		w := watcher{client: c, req: req, yield: yield}
		if req.AfterCursor != nil {
			w.cursor, w.hasCursor = *req.AfterCursor, true
		}
		delay := c.backoff.Initial
		for {
			progressed, err := w.stream(ctx)
			switch {
			case w.stopped:
				return
			case err == nil && req.UntilSettled:
				return
			case ctx.Err() != nil:
				yield(nil, fromRPC(context.Cause(ctx)))
				return
			case err != nil && !resumable(err):
				yield(nil, err)
				return
			}
			if progressed {
				delay = c.backoff.Initial
			}
			wait := delay
			var e *Error
			if errors.As(err, &e) && e.HasRetryDelay && e.RetryDelay > wait {
				wait = e.RetryDelay
			}
			if !sleep(ctx, wait/2+rand.N(wait/2+1)) {
				yield(nil, context.Cause(ctx))
				return
			}
			delay = min(2*delay, c.backoff.Max)
		}
	}
}

// watcher is one Watch's state across its streams.
type watcher struct {
	client *Client
	req    WatchRequest
	yield  func(*heraldv1.DeliveryStatusEvent, error) bool
	// cursor is the last one seen; everything up to it has been yielded.
	cursor    uint64
	hasCursor bool
	// stopped records that the consumer stopped ranging.
	stopped bool
}

// stream runs one StreamDeliveryStatus call until it ends. It reports whether anything
// arrived (so a working stream resets the backoff) and why it ended: nil when the
// server ended it, else an *Error.
func (w *watcher) stream(ctx context.Context) (progressed bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req := &heraldv1.StreamDeliveryStatusRequest{
		EndpointIds:  w.req.EndpointIDs,
		EventTypes:   w.req.EventTypes,
		MessageId:    w.req.MessageID,
		Kinds:        w.req.Kinds,
		UntilSettled: w.req.UntilSettled,
		TenantId:     w.client.tenantOr(w.req.Tenant),
	}
	if w.hasCursor {
		req.AfterCursor = &w.cursor
	}
	stream, err := w.client.RPC.StreamDeliveryStatus(ctx, req)
	if err != nil {
		return false, fromRPC(err)
	}
	for {
		item, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return progressed, nil
		}
		if err != nil {
			err = fromRPC(err)
			w.adoptResumeCursor(err)
			return progressed, err
		}
		progressed = true
		if heartbeat := item.GetHeartbeat(); heartbeat != nil {
			w.advance(heartbeat.GetCursor())
			continue
		}
		event := item.GetEvent()
		if event == nil || (w.hasCursor && event.GetCursor() <= w.cursor) {
			continue // already yielded on an earlier stream
		}
		w.advance(event.GetCursor())
		if !w.yield(event, nil) {
			w.stopped = true
			return progressed, nil
		}
	}
}

func (w *watcher) advance(cursor uint64) {
	if !w.hasCursor || cursor > w.cursor {
		w.cursor, w.hasCursor = cursor, true
	}
}

// adoptResumeCursor takes the cursor a slow consumer is told to resume after when the
// watcher has none of its own yet; its own, when it has one, is never later than what
// it yielded.
func (w *watcher) adoptResumeCursor(err error) {
	var e *Error
	if w.hasCursor || !errors.As(err, &e) || e.Code != codes.ResourceExhausted {
		return
	}
	if cursor, parseErr := strconv.ParseUint(e.Metadata["resume_after_cursor"], 10, 64); parseErr == nil {
		w.cursor, w.hasCursor = cursor, true
	}
}

// resumable tells a stream failure that reconnecting can cure: the connection or the
// server went away, or the server cut off a consumer that fell behind.
func resumable(err error) bool {
	var e *Error
	if !errors.As(err, &e) {
		return false
	}
	switch e.Code {
	case codes.Unavailable, codes.ResourceExhausted, codes.Aborted, codes.Internal:
		return true
	}
	return false
}

// sleep waits d unless ctx ends first; it reports whether the wait completed.
func sleep(ctx context.Context, d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}
