package driver

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/edubureau/studentaid/pkg/wait"
	applicationv1 "github.com/edubureau/studentaid/proto/gen/aid/application/v1"
)

// SubmitConfig shapes the submission load.
type SubmitConfig struct {
	// N is how many applications to submit.
	N int
	// Rate is applications per second; 0 submits as fast as Concurrency allows.
	Rate float64
	// Concurrency is how many calls may be in flight.
	Concurrency int
	// Batch is how many applications one SubmitApplications call carries (1..1000).
	Batch int
	// REST submits over the REST/JSON gateway instead of gRPC.
	REST bool
	// Attempts per call while the error is retryable (same idempotency key).
	Attempts int
}

// Submitter submits generated applications, school by school in turn, and
// records each call.
type Submitter struct {
	Config    SubmitConfig
	Generator *Generator
	// Officers[i] submits for Generator.Schools()[i].
	Officers []*Officer
	Recorder *Recorder
}

// SubmitResult sums up a submission phase.
type SubmitResult struct {
	Accepted int
	// Failed counts applications whose call failed after its retries.
	Failed int
	Calls  int
	// Start is when the first call was due, End when the last returned.
	Start, End time.Time
	// MaxLag is how far behind schedule the generator fell at worst (rate > 0).
	MaxLag time.Duration
}

type submitJob struct {
	school int
	apps   []*applicationv1.NewApplication
	key    string
}

// Run submits Config.N applications and returns when every call has ended
// or ctx is done.
func (s *Submitter) Run(ctx context.Context) (SubmitResult, error) {
	c, err := s.settledConfig()
	if err != nil {
		return SubmitResult{}, err
	}
	r := &submitRun{Submitter: s, c: c}
	jobs := make(chan submitJob, c.Concurrency)
	var wg sync.WaitGroup
	for range c.Concurrency {
		wg.Go(func() {
			for j := range jobs {
				r.submit(ctx, j)
			}
		})
	}
	r.schedule(ctx, jobs)
	close(jobs)
	wg.Wait()
	return r.res, ctx.Err()
}

// settledConfig checks Config against the officers and fills in the
// defaults of its zero fields.
func (s *Submitter) settledConfig() (SubmitConfig, error) {
	c := s.Config
	if c.Batch < 1 || c.Batch > 1000 {
		return c, fmt.Errorf("batch must be 1..1000, got %d", c.Batch)
	}
	if c.Concurrency < 1 {
		c.Concurrency = 1
	}
	if c.Attempts < 1 {
		c.Attempts = 3
	}
	if len(s.Officers) != len(s.Generator.Schools()) {
		return c, fmt.Errorf("%d officers for %d schools", len(s.Officers), len(s.Generator.Schools()))
	}
	return c, nil
}

// submitRun is one Run: its settled configuration and the result its calls
// add up to.
type submitRun struct {
	*Submitter
	c SubmitConfig
	// mu guards the result's call counts and End, which the workers update;
	// Start and MaxLag belong to the scheduling goroutine.
	mu  sync.Mutex
	res SubmitResult
}

// schedule hands out the jobs, school by school in turn, at Config.Rate,
// until N applications are out or ctx is done.
func (r *submitRun) schedule(ctx context.Context, jobs chan<- submitJob) {
	schools := len(r.Officers)
	r.res.Start = time.Now()
	sent := 0
	for i := 0; sent < r.c.N && ctx.Err() == nil; i++ {
		k := min(r.c.Batch, r.c.N-sent)
		if !r.waitUntilDue(ctx, sent) {
			break
		}
		school := i % schools
		job := submitJob{school: school, apps: r.Generator.Applications(school, k), key: uuid.NewString()}
		select {
		case jobs <- job:
		case <-ctx.Done():
		}
		sent += k
	}
}

// waitUntilDue waits, when a rate is set, until the application numbered
// sent is due, and records how far behind schedule it is when it is late.
// It reports false when ctx ended the wait.
func (r *submitRun) waitUntilDue(ctx context.Context, sent int) bool {
	if r.c.Rate <= 0 {
		return true
	}
	due := r.res.Start.Add(time.Duration(float64(sent) / r.c.Rate * float64(time.Second)))
	early := time.Until(due)
	if early > 0 {
		return wait.For(ctx, early)
	}
	r.res.MaxLag = max(r.res.MaxLag, -early)
	return true
}

// submit makes j's call, repeating it while it fails with a retryable
// error, and records the outcome.
func (r *submitRun) submit(ctx context.Context, j submitJob) {
	o := r.Officers[j.school]
	term := r.Generator.Term()
	start := time.Now()
	var apps []*applicationv1.Application
	_, err := WithRetry(ctx, r.c.Attempts, func(ctx context.Context) error {
		var err error
		if r.c.REST {
			apps, err = o.SubmitREST(ctx, term, j.key, j.apps)
		} else {
			apps, err = o.Submit(ctx, term, j.key, j.apps)
		}
		if err != nil && ctx.Err() == nil {
			r.Recorder.Error(StepSubmitted, err)
		}
		return err
	})
	end := time.Now()
	r.count(j, apps, err, end)
	if err == nil {
		ids := make([]string, len(apps))
		for i, a := range apps {
			ids[i] = a.GetApplicationId()
		}
		r.Recorder.Submitted(ids, start, end)
	}
}

// count adds a call that ended at end to the result.
func (r *submitRun) count(j submitJob, accepted []*applicationv1.Application, err error, end time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.res.Calls++
	if err != nil {
		r.res.Failed += len(j.apps)
	} else {
		r.res.Accepted += len(accepted)
	}
	if end.After(r.res.End) {
		r.res.End = end
	}
}
