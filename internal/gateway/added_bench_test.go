package gateway

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"
)

// BenchmarkAddedLatency measures what the gateway adds to a REST submission
// at 200 requests/s (issue 17: under 1 ms p99). A stub upstream over TCP
// answers each POST of a one-application submission after 1 ms with a
// response of the real one's size; every 5 ms one request goes to it through
// the gateway (20 schools in turn, each under its bucket's rate) and one
// directly, each on its own goroutine (open loop: a slow answer does not
// delay the next send), so both paths share the same noise. It reports both
// distributions' p50 and p99 and their differences.
func BenchmarkAddedLatency(b *testing.B) {
	answer := bytes.Repeat([]byte("x"), 1400)
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		time.Sleep(time.Millisecond)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(answer)
	}))
	defer upstream.Close()
	front, mint := benchGateway(b, upstream)
	defer front.Close()
	tokens := make([]string, 20)
	for i := range tokens {
		tokens[i] = mint(fmt.Sprintf("officer-S%03d", i+1), fmt.Sprintf("S%03d", i+1))
	}
	body := []byte(`{"school_code":"S001","term":"2017-autumn","idempotency_key":"k","applications":[{"program_code":"BOARDING",` +
		`"student_id_number":"110101201001011234","student_name":"张三","stage":"compulsory","bank_card_number":"6222020200112233445",` +
		`"account_name":"张三","boarding":true,"rural":true,"registered_poor":true}]}`)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	call := func(base, tok string) time.Duration {
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, base+"/v1/applications:submit", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			b.Error(err)
			return 0
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Errorf("%s: %d", base, resp.StatusCode)
		}
		return time.Since(start)
	}
	const n = 4000 // 20 s at 200/s
	for b.Loop() {
		via, direct := make([]time.Duration, n), make([]time.Duration, n)
		var wg sync.WaitGroup
		tick := time.NewTicker(5 * time.Millisecond)
		for i := range n {
			<-tick.C
			wg.Go(func() { via[i] = call(front.URL, tokens[i%len(tokens)]) })
			wg.Go(func() { direct[i] = call(upstream.URL, tokens[i%len(tokens)]) })
		}
		tick.Stop()
		wg.Wait()
		slices.Sort(via)
		slices.Sort(direct)
		ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
		p := func(s []time.Duration, q int) time.Duration { return s[len(s)*q/100] }
		b.ReportMetric(ms(p(direct, 50)), "direct-p50-ms")
		b.ReportMetric(ms(p(direct, 99)), "direct-p99-ms")
		b.ReportMetric(ms(p(via, 50)), "gateway-p50-ms")
		b.ReportMetric(ms(p(via, 99)), "gateway-p99-ms")
		b.ReportMetric(ms(p(via, 99)-p(direct, 99)), "added-p99-ms")
	}
}
