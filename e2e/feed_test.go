package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/edubureau/studentaid/internal/devtools/stack"
	"github.com/edubureau/studentaid/pkg/apperr"
	"github.com/edubureau/studentaid/pkg/auth"
	"github.com/edubureau/studentaid/pkg/catalog"
	"github.com/edubureau/studentaid/pkg/grpcx"
	"github.com/edubureau/studentaid/pkg/portalclient"
	applicationv1 "github.com/edubureau/studentaid/proto/gen/aid/application/v1"
)

// feedChange is a change as the REST feed gives it.
type feedChange struct {
	Cursor         string    `json:"cursor"`
	ApplicationID  string    `json:"application_id"`
	TrailPosition  string    `json:"trail_position"`
	Type           string    `json:"type"`
	Status         string    `json:"status"`
	PreviousStatus string    `json:"previous_status"`
	RecordedAt     time.Time `json:"recorded_at"`
}

// feedFollower is a portal following a school's feed over REST through the
// gateway with long-polls, as a portal would: it moves its cursor only on a
// complete answer.
type feedFollower struct {
	base, token, school string

	mu     sync.Mutex
	cursor string
	got    []feedChange
	// delays are, for each change, the time from its recording to its
	// arrival; waiting are those of changes recorded while a long-poll
	// was already waiting.
	delays, waiting []time.Duration
}

// run follows the feed until ctx is done.
func (f *feedFollower) run(ctx context.Context) error {
	for ctx.Err() == nil {
		f.mu.Lock()
		q := url.Values{"wait_seconds": {"10"}, "page_size": {"100"}}
		if f.cursor != "" {
			q.Set("after", f.cursor)
		}
		f.mu.Unlock()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.base+"/v1/schools/"+f.school+"/changes?"+q.Encode(), http.NoBody)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+f.token)
		asked := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err // the disconnect when ctx is done
		}
		b, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		arrived := time.Now()
		if err != nil {
			return err
		}
		if resp.StatusCode == http.StatusTooManyRequests {
			// The school's fair-use limit: wait as told, ask again.
			secs, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
			select {
			case <-ctx.Done():
			case <-time.After(time.Duration(max(secs, 1)) * time.Second):
			}
			continue
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("feed: HTTP %d: %s", resp.StatusCode, b)
		}
		var page struct {
			Changes    []feedChange `json:"changes"`
			NextCursor string       `json:"next_cursor"`
		}
		if err := json.Unmarshal(b, &page); err != nil {
			return fmt.Errorf("feed: %w: %s", err, b)
		}
		f.mu.Lock()
		f.got = append(f.got, page.Changes...)
		f.cursor = page.NextCursor
		for _, c := range page.Changes {
			f.delays = append(f.delays, arrived.Sub(c.RecordedAt))
			if c.RecordedAt.After(asked) {
				f.waiting = append(f.waiting, arrived.Sub(c.RecordedAt))
			}
		}
		f.mu.Unlock()
	}
	return nil
}

func (f *feedFollower) seen() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.got)
}

// follow runs f in the background; stop disconnects it and returns its error.
func follow(f *feedFollower) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.run(ctx) }()
	return func() error {
		cancel()
		if err := <-done; ctx.Err() == nil || !errors.Is(err, context.Canceled) {
			return err
		}
		return nil
	}
}

// TestChangeFeed follows one school's change feed, as its portal would,
// while its applications go from submission to PAID: the portal
// disconnects part-way, reconnects with its cursor, and in the end has seen
// every change of every application exactly once, in trail order, matching
// the trails. Another school's officer is refused the feed.
func TestChangeFeed(t *testing.T) {
	// Three followers of one school answer each change at once: above the
	// default fair-use rate at this test's pace, and the delays measured
	// are the feed's, not the limit's.
	s := startStackWith(t, map[string]string{"SCHOOL_REVIEW_NOTICE_PERIOD": "2s"}, false, func(o *stack.Options) {
		o.GatewayEnv = map[string]string{"AID_GATEWAY_RATE": "1000", "AID_GATEWAY_BURST": "1000"}
	})
	checkReasons(t)
	ctx := ctxT(t)
	const school, n = "S004", 40
	base := "http://" + s.Gateway
	officer := newUser(t, s, "officer-"+school, auth.RoleSchoolOfficer, school)
	other := newUser(t, s, "officer-S005", auth.RoleSchoolOfficer, "S005")

	// Another school's officer: 403 on REST, PermissionDenied on gRPC.
	if code := other.rest(t, http.MethodGet, base+"/v1/schools/"+school+"/changes", nil, nil); code != http.StatusForbidden {
		t.Errorf("S005's officer reads S004's feed over REST: HTTP %d, want 403", code)
	}
	conn, err := grpcx.Dial(s.Gateway, other.token)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_, err = applicationv1.NewApplicationServiceClient(conn).ListChanges(ctx, &applicationv1.ListChangesRequest{SchoolCode: school})
	if status.Code(err) != codes.PermissionDenied || apperr.ReasonOf(err) != apperr.ReasonOwnSchoolOnly {
		t.Errorf("S005's officer reads S004's feed over gRPC: %v, want PermissionDenied %s", err, apperr.ReasonOwnSchoolOnly)
	}
	if code := officer.rest(t, http.MethodGet, base+"/v1/schools/"+school+"/changes?after=bogus", nil, nil); code != http.StatusBadRequest {
		t.Errorf("a bad cursor: HTTP %d, want 400", code)
	}

	// watcher stays connected throughout: the delays it sees are what a
	// portal that keeps following gets.
	watcher := &feedFollower{base: base, token: officer.token, school: school}
	stopWatcher := follow(watcher)
	first := &feedFollower{base: base, token: officer.token, school: school}
	stopFirst := follow(first)
	// A Go portal follows over gRPC through the gateway with portalclient.
	gconn, err := portalclient.Dial(s.Gateway, officer.token)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gconn.Close() })
	var goMu sync.Mutex
	var goGot []string
	goCtx, goStop := context.WithCancel(context.Background())
	goDone := make(chan error, 1)
	go func() {
		goDone <- portalclient.New(gconn).Follow(goCtx, school, "", func(_ context.Context, page *applicationv1.ListChangesResponse) error {
			goMu.Lock()
			defer goMu.Unlock()
			for _, c := range page.GetChanges() {
				goGot = append(goGot, c.GetApplicationId()+"/"+strconv.FormatInt(c.GetTrailPosition(), 10))
			}
			return nil
		})
	}()
	cases := make([]*policyCase, n)
	for i := range cases {
		cases[i] = &policyCase{name: "boarding " + strconv.Itoa(i), school: school, term: "2017-autumn", program: "BOARDING_SUBSIDY",
			stage: catalog.StagePrimary, born: 2008, boarding: true, wantFen: 50000, wantPolicy: 1}
	}
	submitCases(t, s, cases, 200)
	eventually(t, "the portal sees the submissions", 30*time.Second, func() error {
		if got := first.seen(); got < n {
			return errf("%d changes", got)
		}
		return nil
	})
	// The portal disconnects (mid long-poll) and comes back a little later,
	// while the applications move on, from its last cursor.
	if err := stopFirst(); err != nil {
		t.Fatal(err)
	}
	second := &feedFollower{base: base, token: officer.token, school: school, cursor: first.cursor}
	var stopSecond func() error
	var startMu sync.Mutex
	restart := time.AfterFunc(3*time.Second, func() {
		startMu.Lock()
		defer startMu.Unlock()
		stopSecond = follow(second)
	})
	driveToPaid(t, s, cases)
	restart.Stop()
	startMu.Lock()
	if stopSecond == nil {
		stopSecond = follow(second)
	}
	startMu.Unlock()

	// What the trails hold is what the feed must have given.
	auditor := newUser(t, s, "auditor-1", auth.RoleAuditor, auth.OrgBureau)
	want := map[string][]string{} // application → statuses by trail position
	total := 0
	for _, c := range cases {
		tr, err := auditor.app.GetTrail(ctx, &applicationv1.GetTrailRequest{ApplicationId: c.id})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range tr.GetEvents() {
			want[c.id] = append(want[c.id], e.GetStatus().String())
		}
		if last := want[c.id][len(want[c.id])-1]; last != "APPLICATION_STATUS_PAID" {
			t.Fatalf("%s ends at %s", c.id, last)
		}
		total += len(want[c.id])
	}
	eventually(t, "the portal sees every change", 30*time.Second, func() error {
		goMu.Lock()
		goSeen := len(goGot)
		goMu.Unlock()
		if got := first.seen() + second.seen(); got < total || watcher.seen() < total || goSeen < total {
			return errf("%d of %d changes", got, total)
		}
		return nil
	})
	if err := stopSecond(); err != nil {
		t.Fatal(err)
	}
	if err := stopWatcher(); err != nil {
		t.Fatal(err)
	}
	goStop()
	if err := <-goDone; !errors.Is(err, context.Canceled) {
		t.Fatalf("portalclient.Follow: %v", err)
	}
	if len(goGot) != total || len(slices.Compact(slices.Sorted(slices.Values(goGot)))) != total {
		t.Errorf("the Go portal got %d changes, the trails hold %d, each once", len(goGot), total)
	}
	if len(watcher.got) != total {
		t.Errorf("the connected portal got %d changes, the trails hold %d", len(watcher.got), total)
	}

	all := append(slices.Clone(first.got), second.got...)
	if len(first.got) == 0 || len(second.got) == 0 {
		t.Fatalf("%d changes before the disconnect and %d after: the test did not disconnect part-way", len(first.got), len(second.got))
	}
	if len(all) != total {
		t.Errorf("the portal got %d changes, the trails hold %d", len(all), total)
	}
	next := map[string]int{}
	for _, c := range all {
		statuses, ok := want[c.ApplicationID]
		if !ok {
			t.Fatalf("a change of %s, not one of the school's applications", c.ApplicationID)
		}
		pos, err := strconv.Atoi(c.TrailPosition)
		if err != nil {
			t.Fatal(err)
		}
		if pos != next[c.ApplicationID]+1 {
			t.Fatalf("%s: change at trail position %d after %d: repeated or missed", c.ApplicationID, pos, next[c.ApplicationID])
		}
		next[c.ApplicationID] = pos
		wantPrev := "APPLICATION_STATUS_UNSPECIFIED"
		if pos > 1 {
			wantPrev = statuses[pos-2]
		}
		if c.Status != statuses[pos-1] || c.PreviousStatus != wantPrev {
			t.Errorf("%s #%d: %s after %s, the trail has %s after %s", c.ApplicationID, pos, c.Status, c.PreviousStatus, statuses[pos-1], wantPrev)
		}
	}
	for id, statuses := range want {
		if next[id] != len(statuses) {
			t.Errorf("%s: the feed reached trail position %d of %d", id, next[id], len(statuses))
		}
	}

	for _, d := range []struct {
		what   string
		delays []time.Duration
	}{
		{"every change, to the portal that stayed connected", watcher.delays},
		{"changes recorded while a long-poll waited", append(slices.Clone(watcher.waiting), append(first.waiting, second.waiting...)...)},
	} {
		ds := slices.Clone(d.delays)
		slices.Sort(ds)
		if len(ds) > 0 {
			t.Logf("feed delay from recording to delivery through the gateway, %s (%d): p50 %s, p99 %s, max %s",
				d.what, len(ds), ds[len(ds)/2], ds[len(ds)*99/100], ds[len(ds)-1])
		}
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatal("ran out of time")
	}
}
