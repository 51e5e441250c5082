package gateway

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"

	"github.com/edubureau/studentaid/pkg/auth"
)

// The flooding school's client, when this test binary runs as it: the
// gateway's URL and the token to flood it with. BenchmarkOtherSchoolDuringFlood
// starts the binary again with these set.
const (
	floodTargetEnv = "GATEWAY_FLOOD_TARGET"
	floodTokenEnv  = "GATEWAY_FLOOD_TOKEN"
	floodCPUEnv    = "GATEWAY_FLOOD_CPU"
)

func TestMain(m *testing.M) {
	if target := os.Getenv(floodTargetEnv); target != "" {
		os.Exit(flooder(target, os.Getenv(floodTokenEnv), os.Getenv(floodCPUEnv)))
	}
	os.Exit(m.Run())
}

// flooder sends requests from 8 connections as fast as they are answered
// until its standard input closes, then prints how many it sent and how
// many were refused with 429.
func flooder(target, token, cpu string) int {
	if cpu != "" {
		n, err := strconv.Atoi(cpu)
		if err == nil {
			err = pinThreads(n)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "flooder: pin:", err)
			return 1
		}
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	var sent, limited atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for ctx.Err() == nil {
				code, err := get(ctx, client, target+"/v1/programs", token)
				if err != nil {
					continue // stopping
				}
				sent.Add(1)
				if code == http.StatusTooManyRequests {
					limited.Add(1)
				}
			}
		})
	}
	wg.Wait()
	fmt.Fprintf(os.Stdout, "flood %d limited %d\n", sent.Load(), limited.Load())
	return 0
}

func get(ctx context.Context, client *http.Client, url, token string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, http.NoBody)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

// pinThreads binds every thread of this process to one CPU. Threads the Go
// runtime starts later inherit the mask of the thread that starts them.
func pinThreads(cpu int) error {
	var set unix.CPUSet
	set.Set(cpu)
	for range 2 { // threads started during the first pass
		tasks, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return err
		}
		for _, t := range tasks {
			tid, err := strconv.Atoi(t.Name())
			if err != nil {
				continue
			}
			if err := unix.SchedSetaffinity(tid, &set); err != nil {
				return fmt.Errorf("thread %d: %w", tid, err)
			}
		}
	}
	return nil
}

// BenchmarkOtherSchoolDuringFlood measures one school's latency through a
// real gateway (over TCP, to a stub upstream that takes 1 ms) while another
// school floods it from 8 connections, against the same school alone. It
// reports both p99s.
//
// Two placements of the flooding client: "same-process" floods from
// goroutines of the benchmark itself, sharing every core with the gateway;
// "other-cpu" (on a machine with two or more CPUs) floods from a separate
// process bound to CPU 1 while the gateway, its upstream and the measured
// school are bound to CPU 0 — the flood's client costs the gateway nothing,
// as when it comes from another machine, and the gateway's core pays only
// for answering it.
func BenchmarkOtherSchoolDuringFlood(b *testing.B) {
	b.Run("same-process", func(b *testing.B) { benchFlood(b, false) })
	b.Run("other-cpu", func(b *testing.B) {
		if runtime.NumCPU() < 2 {
			b.Fatal("needs two CPUs: the flood's client is bound to the second")
		}
		benchFlood(b, true)
	})
}

func benchFlood(b *testing.B, separate bool) {
	b.Helper()
	if separate {
		var all unix.CPUSet
		if err := unix.SchedGetaffinity(0, &all); err != nil {
			b.Fatal(err)
		}
		if err := pinThreads(0); err != nil {
			b.Fatal(err)
		}
		procs := runtime.GOMAXPROCS(1)
		defer func() {
			runtime.GOMAXPROCS(procs)
			if err := restoreThreads(&all); err != nil {
				b.Error(err)
			}
		}()
	}
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		time.Sleep(time.Millisecond)
		_, _ = w.Write([]byte("{}"))
	}))
	defer upstream.Close()
	front, mint := benchGateway(b, upstream)
	defer front.Close()
	other, flooder := mint("u-S002", "S002"), mint("u-S001", "S001")
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	// The other school at 40/s, under its bucket's rate.
	measure := func(n int) time.Duration {
		var lat []time.Duration
		for range n {
			start := time.Now()
			code, err := get(context.Background(), client, front.URL+"/v1/programs", other)
			if err != nil {
				b.Fatal(err)
			}
			if code != http.StatusOK {
				b.Fatalf("S002 got %d", code)
			}
			lat = append(lat, time.Since(start))
			time.Sleep(25 * time.Millisecond)
		}
		slices.Sort(lat)
		return lat[len(lat)*99/100]
	}
	for b.Loop() {
		alone := measure(200)
		var stop func() (flood, limited int64)
		if separate {
			stop = floodFromProcess(b, front.URL, flooder)
		} else {
			stop = floodFromGoroutines(client, front.URL, flooder)
		}
		during := measure(200)
		flood, limited := stop()
		b.ReportMetric(float64(alone.Microseconds())/1000, "p99-alone-ms")
		b.ReportMetric(float64(during.Microseconds())/1000, "p99-flood-ms")
		b.ReportMetric(float64(flood), "flood-requests")
		b.ReportMetric(float64(limited), "flood-limited")
	}
}

// restoreThreads gives every thread back the mask it had.
func restoreThreads(set *unix.CPUSet) error {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return err
	}
	for _, t := range tasks {
		if tid, err := strconv.Atoi(t.Name()); err == nil {
			if err := unix.SchedSetaffinity(tid, set); err != nil {
				return err
			}
		}
	}
	return nil
}

// floodFromGoroutines floods from 8 goroutines of this process until the
// returned function is called; it returns the requests sent and refused.
func floodFromGoroutines(client *http.Client, base, token string) func() (int64, int64) {
	ctx, cancel := context.WithCancel(context.Background())
	var sent, limited atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for ctx.Err() == nil {
				code, err := get(ctx, client, base+"/v1/programs", token)
				if err != nil {
					continue
				}
				sent.Add(1)
				if code == http.StatusTooManyRequests {
					limited.Add(1)
				}
			}
		})
	}
	return func() (int64, int64) {
		cancel()
		wg.Wait()
		return sent.Load(), limited.Load()
	}
}

// floodFromProcess starts this test binary again as the flooder, bound to
// CPU 1, and waits until its first requests arrive.
func floodFromProcess(b *testing.B, base, token string) func() (int64, int64) {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), floodTargetEnv+"="+base, floodTokenEnv+"="+token, floodCPUEnv+"=1", "GOMAXPROCS=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // the child up and flooding
	return func() (int64, int64) {
		_ = stdin.Close()
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		if err := cmd.Wait(); err != nil {
			b.Fatalf("flooder: %v", err)
		}
		var flood, limited int64
		if _, err := fmt.Sscanf(strings.TrimSpace(line), "flood %d limited %d", &flood, &limited); err != nil {
			b.Fatalf("flooder said %q: %v", line, err)
		}
		if flood == 0 {
			b.Fatal("the flooder sent nothing")
		}
		return flood, limited
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
