package driver

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"

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
	c := s.Config
	if c.Batch < 1 || c.Batch > 1000 {
		return SubmitResult{}, fmt.Errorf("batch must be 1..1000, got %d", c.Batch)
	}
	if c.Concurrency < 1 {
		c.Concurrency = 1
	}
	if c.Attempts < 1 {
		c.Attempts = 3
	}
	if len(s.Officers) != len(s.Generator.Schools()) {
		return SubmitResult{}, fmt.Errorf("%d officers for %d schools", len(s.Officers), len(s.Generator.Schools()))
	}
	jobs := make(chan submitJob, c.Concurrency)
	var (
		mu  sync.Mutex
		res SubmitResult
		wg  sync.WaitGroup
	)
	term := s.Generator.Term()
	for range c.Concurrency {
		wg.Go(func() {
			for j := range jobs {
				o := s.Officers[j.school]
				start := time.Now()
				var apps []*applicationv1.Application
				_, err := WithRetry(ctx, c.Attempts, func(ctx context.Context) error {
					var err error
					if c.REST {
						apps, err = o.SubmitREST(ctx, term, j.key, j.apps)
					} else {
						apps, err = o.Submit(ctx, term, j.key, j.apps)
					}
					if err != nil && ctx.Err() == nil {
						s.Recorder.Error(StepSubmitted, err)
					}
					return err
				})
				end := time.Now()
				mu.Lock()
				res.Calls++
				if err != nil {
					res.Failed += len(j.apps)
				} else {
					res.Accepted += len(apps)
				}
				if end.After(res.End) {
					res.End = end
				}
				mu.Unlock()
				if err == nil {
					ids := make([]string, len(apps))
					for i, a := range apps {
						ids[i] = a.GetApplicationId()
					}
					s.Recorder.Submitted(ids, start, end)
				}
			}
		})
	}
	schools := len(s.Officers)
	res.Start = time.Now()
	sent := 0
	for i := 0; sent < c.N && ctx.Err() == nil; i++ {
		k := min(c.Batch, c.N-sent)
		if c.Rate > 0 {
			due := res.Start.Add(time.Duration(float64(sent) / c.Rate * float64(time.Second)))
			if wait := time.Until(due); wait > 0 {
				if !sleep(ctx, wait) {
					break
				}
			} else {
				res.MaxLag = max(res.MaxLag, -wait)
			}
		}
		school := i % schools
		job := submitJob{school: school, apps: s.Generator.Applications(school, k), key: uuid.NewString()}
		select {
		case jobs <- job:
		case <-ctx.Done():
		}
		sent += k
	}
	close(jobs)
	wg.Wait()
	return res, ctx.Err()
}
