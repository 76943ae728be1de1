//! Publishes an event and follows its deliveries: `HERALD_ADDR=host:port HERALD_API_KEY=... cargo run --example publish`.

use herald_client::{Client, Event, pb};

#[tokio::main]
async fn main() -> Result<(), herald_client::Error> {
    let client =
        Client::builder(std::env::var("HERALD_ADDR").unwrap_or_else(|_| "localhost:50051".into()))
            .api_key(std::env::var("HERALD_API_KEY").unwrap_or_default())
            // For TLS: .ca_certificate(std::fs::read("ca.pem")?) and, when the server asks
            // for a client certificate, .identity(cert_pem, key_pem).
            .tenant("acme")
            .connect()
            .await?;

    let registered = client
        .register_endpoint(pb::RegisterEndpointRequest {
            url: "https://billing.example.com/webhooks".into(),
            event_types: vec!["invoice.*".into()],
            ..Default::default()
        })
        .await?;
    println!("endpoint secret (shown once): {}", registered.secret);

    let event = Event::json(
        "invoice.paid",
        serde_json::json!({"invoice": "in_1", "cents": 4200}),
    )
    .idempotency_key("in_1/paid");
    match client.publish(event).await {
        Ok(published) => println!("message {}", published.message_id),
        Err(e) => {
            for violation in e.field_violations() {
                eprintln!("{}: {}", violation.field, violation.description);
            }
            return Err(e);
        }
    }

    // Follow its deliveries; the stream resumes by itself after a disconnect.
    use tokio_stream::StreamExt;
    let mut watch = client.watch(pb::StreamDeliveryStatusRequest::default());
    while let Some(event) = watch.next().await {
        let event = event?;
        println!("{} {:?} {}", event.cursor, event.kind(), event.message_id);
    }
    Ok(())
}
