package main

import (
	"crypto/tls"
	"fmt"
	"os"
	"sync"
	"time"
)

// certReloader serves a certificate and key from files, reading them again
// when they change, so a renewed certificate is used without a restart.
type certReloader struct {
	certFile, keyFile string
	every             time.Duration // how often the files are looked at

	mu      sync.Mutex
	cert    *tls.Certificate
	modTime time.Time
	checked time.Time
}

// newCertReloader serves certFile and keyFile, given by the flags named.
func newCertReloader(certFlag, certFile, keyFlag, keyFile string, every time.Duration) (*certReloader, error) {
	if certFile == "" || keyFile == "" {
		return nil, fmt.Errorf("%s and %s go together", certFlag, keyFlag)
	}
	if every <= 0 {
		every = time.Minute
	}
	r := &certReloader{certFile: certFile, keyFile: keyFile, every: every}
	if _, err := r.get(nil); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *certReloader) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cert != nil && time.Since(r.checked) < r.every {
		return r.cert, nil
	}
	r.checked = time.Now()
	info, err := os.Stat(r.certFile)
	if err != nil {
		if r.cert != nil {
			return r.cert, nil
		}
		return nil, err
	}
	if r.cert != nil && info.ModTime().Equal(r.modTime) {
		return r.cert, nil
	}
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		if r.cert != nil {
			return r.cert, nil // a half-written renewal: keep the old one
		}
		return nil, fmt.Errorf("load certificate: %w", err)
	}
	r.cert, r.modTime = &cert, info.ModTime()
	return r.cert, nil
}
