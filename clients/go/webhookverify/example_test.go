package webhookverify_test

import (
	"errors"
	"io"
	"log"
	"net/http"
	"os"

	"github.com/herald-webhooks/herald/clients/go/webhookverify"
)

// A receiver that refuses what Herald did not sign. Compiled, not run.
func ExampleVerify() {
	secret := os.Getenv("HERALD_WEBHOOK_SECRET") // whsec_…, from RegisterEndpoint
	http.HandleFunc("/webhooks", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, "unreadable body", http.StatusBadRequest)
			return
		}
		err = webhookverify.Verify(secret, r.Header, body, webhookverify.DefaultTolerance)
		switch {
		case errors.Is(err, webhookverify.ErrSecret):
			log.Print(err) // our configuration, not the sender's fault
			http.Error(w, "misconfigured", http.StatusInternalServerError)
			return
		case err != nil:
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		// Deduplicate on r.Header.Get("webhook-id"), then handle body.
		w.WriteHeader(http.StatusNoContent)
	})
	log.Fatal(http.ListenAndServe(":8080", nil))
}
