package gateway

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/edubureau/studentaid/pkg/auth"
)

// BenchmarkOtherSchoolDuringFlood measures one school's latency through a
// real gateway (over TCP, to a stub upstream that takes 1 ms) while another
// school floods it from 8 connections, against the same school alone. It
// reports both p99s.
func BenchmarkOtherSchoolDuringFlood(b *testing.B) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		time.Sleep(time.Millisecond)
		_, _ = w.Write([]byte("{}"))
	}))
	defer upstream.Close()
	front, mint := benchGateway(b, upstream)
	defer front.Close()
	token := func(org string) string { return mint("u-"+org, org) }
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	call := func(tok string) (time.Duration, int) {
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, front.URL+"/v1/programs", http.NoBody)
		req.Header.Set("Authorization", "Bearer "+tok)
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_ = resp.Body.Close()
		return time.Since(start), resp.StatusCode
	}
	other, flooder := token("S002"), token("S001")
	// The other school at 40/s, under its bucket's rate.
	measure := func(n int) time.Duration {
		var lat []time.Duration
		for range n {
			d, code := call(other)
			if code != http.StatusOK {
				b.Fatalf("S002 got %d", code)
			}
			lat = append(lat, d)
			time.Sleep(25 * time.Millisecond)
		}
		slices.Sort(lat)
		return lat[len(lat)*99/100]
	}
	for b.Loop() {
		alone := measure(200)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		var flood, limited int64
		var mu sync.Mutex
		for range 8 {
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					_, code := call(flooder)
					mu.Lock()
					flood++
					if code == http.StatusTooManyRequests {
						limited++
					}
					mu.Unlock()
				}
			})
		}
		during := measure(200)
		close(stop)
		wg.Wait()
		b.ReportMetric(float64(alone.Microseconds())/1000, "p99-alone-ms")
		b.ReportMetric(float64(during.Microseconds())/1000, "p99-flood-ms")
		b.ReportMetric(float64(flood), "flood-requests")
		b.ReportMetric(float64(limited), "flood-limited")
	}
}

// benchGateway starts a real gateway over TCP with the default limits in
// front of upstream (serving the application service's routes), and a
// function minting a school officer's token it accepts.
func benchGateway(b *testing.B, upstream *httptest.Server) (*httptest.Server, func(user, org string) string) {
	b.Helper()
	pub, priv, err := auth.GenerateKey()
	if err != nil {
		b.Fatal(err)
	}
	signer := auth.NewSigner(priv, "iss", "aud")
	addr := strings.TrimPrefix(upstream.URL, "http://")
	g := New(Options{
		Routes:    Routes,
		Upstreams: map[string]Upstream{"application": {HTTP: addr, GRPC: addr}},
		Limits:    DefaultLimits,
		Verifier:  auth.NewVerifier(auth.TokenPolicy{Audience: "aud", Issuer: "iss", MaxLifetime: 2 * time.Hour}, pub),
		Registry:  prometheus.NewRegistry(),
	})
	mint := func(user, org string) string {
		tok, err := signer.Mint(auth.Identity{UserID: user, Role: auth.RoleSchoolOfficer, Org: org}, time.Hour)
		if err != nil {
			b.Fatal(err)
		}
		return tok
	}
	return httptest.NewServer(g), mint
}
