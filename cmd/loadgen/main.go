// Command loadgen drives N applications through the whole approval chain via
// the public APIs — a school officer per school submits, bots decide at the
// school and the bureau and confirm batches at finance — and reports, per
// step and end to end, the count, throughput, p50/p95/p99 latency and errors,
// plus each process's peak memory and CPU time and how fast the outbox
// backlog drains. By default it brings up the whole stack itself (a
// throwaway PostgreSQL with fsync on, NATS JetStream in a child process,
// Jaeger when built, the bank simulator at zero latency and the five
// services with a zero notice period).
//
//	loadgen -n 20000 -rate 250 -json result.json
//	loadgen -n 2000 -rest -batch 1 -rate 200        # REST submit latency
//	loadgen -n 50000 -single-batch                  # one batch of 50,000 → all paid
//	loadgen -start=false -endpoints application=127.0.0.1:9101/127.0.0.1:8101,... -key .devstack/keys/auth.pem
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"time"
)

func main() {
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(2)
	}
	if err := run(cfg); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

// config is the command line. Its JSON names are the Go field names, which
// the result files written so far use.
type config struct {
	N            int     `json:"N"`
	Rate         float64 `json:"Rate"`
	Concurrency  int     `json:"Concurrency"`
	Batch        int     `json:"Batch"`
	REST         bool    `json:"REST"`
	RejectSchool float64 `json:"RejectSchool"`
	RejectBureau float64 `json:"RejectBureau"`
	Start        bool    `json:"Start"`
	BinDir       string  `json:"BinDir"`
	Dir          string  `json:"Dir"`
	Keep         bool    `json:"Keep"`
	JaegerBin    string  `json:"JaegerBin"`
	SampleRatio  float64 `json:"SampleRatio"`
	LogLevel     string  `json:"LogLevel"`
	Endpoints    string  `json:"Endpoints"`
	KeyFile      string  `json:"KeyFile"`
	PIDs         string  `json:"PIDs"`
	Schools      int     `json:"Schools"`
	Replicas     int     `json:"Replicas,omitempty"`
	NATSNodes    int     `json:"NATSNodes,omitempty"`
	// StreamMaxMiB caps the event stream (0: natsx.EventStreamMaxBytes).
	StreamMaxMiB int64 `json:"StreamMaxMiB,omitempty"`
	// JaegerMaxTraces bounds Jaeger's in-memory store (0: the stack's default).
	JaegerMaxTraces int           `json:"JaegerMaxTraces,omitempty"`
	Term            string        `json:"Term"`
	Program         string        `json:"Program"`
	Seed            uint64        `json:"Seed"`
	Poll            time.Duration `json:"Poll"`
	Notice          string        `json:"Notice"`
	FinanceEvery    time.Duration `json:"FinanceEvery"`
	WatchPoll       time.Duration `json:"WatchPoll"`
	Timeout         time.Duration `json:"Timeout"`
	ShownWait       time.Duration `json:"ShownWait"`
	JSON            string        `json:"JSON"`
	SingleBatch     bool          `json:"SingleBatch"`
	SubmitOnly      bool          `json:"SubmitOnly"`
	PgbenchTPS      float64       `json:"PgbenchTPS"`
	// SoakBaseline, when set, samples every process's memory that long
	// after the first submission and compares the end of the run with it.
	SoakBaseline time.Duration `json:"SoakBaseline,omitempty"`
	// SoakWindow is how long each end of the soak is averaged over: a Go
	// heap's garbage and a duplicate table's compaction swing one sample by
	// more than the tolerance.
	SoakWindow time.Duration `json:"SoakWindow,omitempty"`
}

func parseFlags(args []string) (config, error) {
	var c config
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.IntVar(&c.N, "n", 2000, "applications to submit")
	fs.Float64Var(&c.Rate, "rate", 0, "applications per second (0 = as fast as -concurrency allows)")
	fs.IntVar(&c.Concurrency, "concurrency", 8, "submit calls in flight")
	fs.IntVar(&c.Batch, "batch", 100, "applications per SubmitApplications call (1..1000; 1 with -rest measures the REST latency per application)")
	fs.BoolVar(&c.REST, "rest", false, "submit over REST/JSON at the HTTP endpoint instead of gRPC")
	fs.Float64Var(&c.RejectSchool, "reject-school", 0.05, "share of applications the school bots reject")
	fs.Float64Var(&c.RejectBureau, "reject-bureau", 0.02, "share of applications the bureau bot rejects")
	fs.BoolVar(&c.Start, "start", true, "bring up the stack (PostgreSQL, NATS, Jaeger, bank simulator, five services) from -bin")
	fs.StringVar(&c.BinDir, "bin", "bin", "directory of the built binaries (make build)")
	fs.StringVar(&c.Dir, "dir", "", "working directory of the stack (default: a new temporary directory, removed afterwards unless -keep)")
	fs.BoolVar(&c.Keep, "keep", false, "keep the stack's directory (logs, database) afterwards")
	fs.StringVar(&c.JaegerBin, "jaeger", ".cache/bin/jaeger", "Jaeger binary to export traces to (empty or missing: no Jaeger)")
	fs.Float64Var(&c.SampleRatio, "sample", 0.01, "trace sampling ratio of the services (parentbased_traceidratio)")
	fs.StringVar(&c.LogLevel, "log-level", "info", "services' LOG_LEVEL")
	fs.StringVar(&c.Endpoints, "endpoints", defaultEndpoints, "with -start=false: name=grpc/http,… of a running stack")
	fs.StringVar(&c.KeyFile, "key", ".devstack/keys/auth.pem", "with -start=false: the private key the running stack's tokens are signed with")
	fs.StringVar(&c.PIDs, "pids", "", "with -start=false: name=pid,… of processes to measure (postgres is measured with its children)")
	fs.IntVar(&c.Schools, "schools", 20, "schools submitting (S001 …)")
	fs.IntVar(&c.Replicas, "replicas", 1, "processes of every service the stack runs (2+: they compete for the consumers; the load goes to the first)")
	fs.Int64Var(&c.StreamMaxMiB, "stream-max-mib", 0, "cap the event stream at this many MiB, oldest events dropped first (0: the dev stack's 4 GiB; e.g. 256 to run a soak with the stream at its limit)")
	fs.IntVar(&c.JaegerMaxTraces, "jaeger-max-traces", 0, "traces Jaeger's in-memory store keeps before it drops the oldest (0: the dev stack's 200,000; make soak: 1,000, full before the baseline)")
	fs.IntVar(&c.NATSNodes, "nats-nodes", 1, "JetStream nodes the stack runs (3: a cluster with R3 streams)")
	fs.StringVar(&c.Term, "term", "2017-autumn", "term of the applications")
	fs.StringVar(&c.Program, "program", "", "generate only this program (default: the report's mix; -single-batch: POVERTY_EXTENSION)")
	fs.Uint64Var(&c.Seed, "seed", 0, "random seed; also offsets ID and card numbers (0 = from the clock)")
	fs.StringVar(&c.Notice, "notice", "1ms", "school-review's notice period (SCHOOL_REVIEW_NOTICE_PERIOD; it must be positive, so 1ms stands for zero)")
	fs.DurationVar(&c.Poll, "poll", 250*time.Millisecond, "how long review bots wait when nothing is pending")
	fs.DurationVar(&c.FinanceEvery, "finance-every", 2*time.Second, "how often the finance bot closes and confirms open batches")
	fs.DurationVar(&c.WatchPoll, "watch-poll", 500*time.Millisecond, "how often the watcher polls confirmed batches")
	fs.DurationVar(&c.Timeout, "timeout", 30*time.Minute, "give up waiting for the chain after this long")
	fs.DurationVar(&c.ShownWait, "shown-wait", 2*time.Minute, "after the chain ends, how long to wait for the application service to show every paid application as PAID")
	fs.StringVar(&c.JSON, "json", "", "write the results as JSON to this file")
	fs.BoolVar(&c.SingleBatch, "single-batch", false, "submit -n applications of one program, approve all, wait until they sit in one open batch, confirm it and time confirm → all paid")
	fs.BoolVar(&c.SubmitOnly, "submit-only", false, "only submit (no bots): measures the submit API alone")
	fs.Float64Var(&c.PgbenchTPS, "pgbench-tps", 0, "pgbench TPS measured on this machine, to report the ratio (make bench passes it)")
	fs.DurationVar(&c.SoakBaseline, "soak-baseline", 0, "soak: compare every process's memory averaged over -soak-window from this long after the first submission with its average over the chain's last -soak-window (make soak: 10m)")
	fs.DurationVar(&c.SoakWindow, "soak-window", 5*time.Minute, "soak: how long each end of the comparison is averaged over (sampled 30 times)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	switch {
	case c.N < 1:
		return c, errors.New("-n must be at least 1")
	case c.Batch < 1 || c.Batch > 1000:
		return c, errors.New("-batch must be 1..1000")
	case c.RejectSchool < 0 || c.RejectSchool > 1 || c.RejectBureau < 0 || c.RejectBureau > 1:
		return c, errors.New("reject rates must be 0..1")
	case c.SampleRatio < 0 || c.SampleRatio > 1:
		return c, errors.New("-sample must be 0..1")
	case c.JaegerMaxTraces < 0:
		return c, errors.New("-jaeger-max-traces must not be negative")
	case c.SoakBaseline > 0 && c.SoakWindow <= 0:
		return c, errors.New("-soak-window must be positive")
	case c.StreamMaxMiB < 0:
		return c, errors.New("-stream-max-mib must not be negative")
	case c.SingleBatch && c.SubmitOnly:
		return c, errors.New("-single-batch and -submit-only exclude each other")
	}
	if c.Seed == 0 {
		c.Seed = uint64(time.Now().UnixNano())
	}
	if c.SingleBatch {
		c.RejectSchool, c.RejectBureau = 0, 0
		if c.Program == "" {
			c.Program = "POVERTY_EXTENSION"
		}
	}
	return c, nil
}
