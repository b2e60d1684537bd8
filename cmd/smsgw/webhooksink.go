package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/smsgw/smsgw/notify/webhook"
)

// webhookSink receives webhooks and prints each one with whether its
// signature verifies: a receiver to try the gateway against.
func webhookSink(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("webhook-sink", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8099", "listen address")
	secret := fs.String("secret", "", "webhook secret to verify signatures with")
	if err := fs.Parse(args); err != nil {
		return err
	}
	srv := &http.Server{Addr: *addr, ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		verdict := "unsigned"
		if sig := r.Header.Get(webhook.SignatureHeader); sig != "" {
			verdict = "signature ok"
			if err := webhook.Verify(*secret, sig, body, time.Now(), 5*time.Minute); err != nil {
				verdict = "signature BAD: " + err.Error()
			}
		}
		fmt.Fprintf(stdout, "webhook %s %s (%s)\n", r.URL.Path, body, verdict)
		w.WriteHeader(http.StatusNoContent)
	})}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
