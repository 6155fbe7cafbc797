package webhook_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"time"

	"github.com/notified/notified/internal/webhook"
)

// The signature of the Standard Webhooks specification's own test vector.
func ExampleSign() {
	sig, err := webhook.Sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek",
		time.Unix(1614265330, 0), []byte(`{"test": 2432232314}`))
	if err != nil {
		panic(err)
	}
	fmt.Println(sig)
	// Output: v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=
}

// A receiver that verifies what a Deliverer sends.
func ExampleDeliverer_Deliver() {
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if err := webhook.Verify(secret, r.Header, body, 5*time.Minute); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		fmt.Fprint(w, "verified")
	}))
	defer receiver.Close()

	d, err := webhook.New(webhook.Options{
		// The receiver listens on loopback, which is refused by default.
		AllowCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
	})
	if err != nil {
		panic(err)
	}
	defer d.CloseIdleConnections()

	res := d.Deliver(context.Background(), webhook.Request{
		URL: receiver.URL + "/hooks", Secret: secret, MsgID: "evt_1", Body: []byte(`{"id":1}`), Route: "orders",
	})
	fmt.Println(res.Outcome, res.Status, res.Excerpt)
	// Output: delivered 200 verified
}
