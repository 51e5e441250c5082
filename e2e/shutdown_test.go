package e2e

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/edubureau/studentaid/pkg/auth"
	applicationv1 "github.com/edubureau/studentaid/proto/gen/aid/application/v1"
	schoolreviewv1 "github.com/edubureau/studentaid/proto/gen/aid/schoolreview/v1"
)

// TestGracefulShutdown stops the application service with SIGTERM while
// schools are submitting: it must exit 0 within the bound, every submission
// it accepted must be stored, and every accepted application's event must
// reach school-review (the relay flushed, or its successor picked up).
func TestGracefulShutdown(t *testing.T) {
	s := startStack(t, map[string]string{"SCHOOL_REVIEW_NOTICE_PERIOD": "1h", "SHUTDOWN_TIMEOUT": "10s"}, false)
	officer := newUser(t, s, "officer-S001", auth.RoleSchoolOfficer, "S001")
	reviewer := newUser(t, s, "reviewer-S001", auth.RoleSchoolReviewer, "S001")

	var mu sync.Mutex
	var accepted []string
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				var reqs []*applicationv1.NewApplication
				for k := range 20 {
					reqs = append(reqs, goodApplication(w*100000+i*20+k))
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				resp, err := officer.app.SubmitApplications(ctx, &applicationv1.SubmitApplicationsRequest{SchoolCode: "S001", Term: "2017-autumn", Applications: reqs, IdempotencyKey: fmt.Sprintf("shutdown-%d-%d", w, i)})
				cancel()
				if err != nil {
					time.Sleep(20 * time.Millisecond)
					continue
				}
				mu.Lock()
				for _, a := range resp.GetApplications() {
					accepted = append(accepted, a.GetApplicationId())
				}
				mu.Unlock()
			}
		})
	}
	time.Sleep(1500 * time.Millisecond)
	p := s.Process("application")
	start := time.Now()
	if err := p.Stop(15 * time.Second); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	took := time.Since(start)
	if err := p.ExitErr(); err != nil {
		t.Errorf("application exited with %v after SIGTERM", err)
	}
	t.Logf("application stopped %s after SIGTERM", took.Round(time.Millisecond))
	close(stop)
	wg.Wait()
	if err := p.Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	ids := append([]string(nil), accepted...)
	mu.Unlock()
	if len(ids) == 0 {
		t.Fatal("no submission was accepted before the stop")
	}
	ctx := ctxT(t)
	officer = newUser(t, s, "officer-S001", auth.RoleSchoolOfficer, "S001") // fresh connections to the new process
	for _, id := range ids {
		if _, err := officer.app.GetApplication(ctx, &applicationv1.GetApplicationRequest{ApplicationId: id}); err != nil {
			t.Fatalf("accepted application %s lost: %v", id, err)
		}
	}
	eventually(t, "every accepted application reached school review", 60*time.Second, func() error {
		for _, id := range ids {
			if _, err := reviewer.school.GetReview(ctx, &schoolreviewv1.GetReviewRequest{ApplicationId: id}); err != nil {
				return fmt.Errorf("%s: %w", id, err)
			}
		}
		return nil
	})
	t.Logf("%d applications accepted around the shutdown, all stored and delivered", len(ids))
}
