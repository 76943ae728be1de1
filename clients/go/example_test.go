package herald_test

import (
	"context"
	"errors"
	"log"
	"os"

	herald "github.com/herald-webhooks/herald/clients/go"
	"github.com/herald-webhooks/herald/clients/go/heraldv1"
)

// Publishing from a service. Compiled, not run: it needs a server.
func ExampleClient_Publish() {
	client, err := herald.New("localhost:50051",
		herald.WithAPIKey(os.Getenv("HERALD_API_KEY")),
		herald.WithTenant("acme"),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	published, err := client.Publish(context.Background(), herald.Event{
		Type:           "invoice.paid",
		Payload:        herald.JSON(map[string]any{"invoice": "inv_1", "amount": 4200}),
		IdempotencyKey: "invoice-inv_1-paid",
	})
	var refused *herald.Error
	if errors.As(err, &refused) {
		for _, v := range refused.FieldViolations {
			log.Printf("%s: %s", v.Field, v.Description)
		}
	}
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("message %s: %d deliveries", published.GetMessageId(), published.GetDeliveryCount())
}

// Following one message until it is settled on every endpoint.
func ExampleClient_Watch() {
	client, err := herald.New("localhost:50051", herald.WithAPIKey(os.Getenv("HERALD_API_KEY")))
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	for event, err := range client.Watch(context.Background(), herald.WatchRequest{
		MessageID:    "msg_…",
		UntilSettled: true,
	}) {
		if err != nil {
			log.Fatal(err)
		}
		if event.GetKind() == heraldv1.StatusEventKind_STATUS_EVENT_KIND_ATTEMPT_FAILED {
			log.Printf("attempt %d to %s failed: %s", event.GetAttemptNumber(), event.GetEndpointId(), event.GetError())
		}
	}
}
