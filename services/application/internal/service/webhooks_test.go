package service_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"

	applicationv1 "github.com/edubureau/studentaid/proto/gen/aid/application/v1"
	appcore "github.com/edubureau/studentaid/services/application/internal/app"
	appservice "github.com/edubureau/studentaid/services/application/internal/service"
)

// portal is a webhook receiver: it checks each delivery's signature with
// the secret it is given, keeps the deliveries, and answers 500 while
// failing is set.
type portal struct {
	t       *testing.T
	srv     *httptest.Server
	secret  atomic.Value // string
	failing atomic.Bool
	mu      sync.Mutex
	got     []*applicationv1.WebhookDelivery // every request, failed ones too
	bad     []string                         // what was wrong with a request
}

func newPortal(t *testing.T) *portal {
	t.Helper()
	p := &portal{t: t}
	p.secret.Store("")
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *portal) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	p.mu.Lock()
	defer p.mu.Unlock()
	if problem := checkSignature(p.secret.Load().(string), r.Header.Get("Aid-Signature"), body); problem != "" {
		p.bad = append(p.bad, problem)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var d applicationv1.WebhookDelivery
	if err := protojson.Unmarshal(body, &d); err != nil {
		p.bad = append(p.bad, "body: "+err.Error())
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if r.Header.Get("Aid-Webhook-Id") != d.GetWebhookId() || r.Header.Get("Content-Type") != "application/json" {
		p.bad = append(p.bad, "headers: "+r.Header.Get("Aid-Webhook-Id")+" "+r.Header.Get("Content-Type"))
	}
	p.got = append(p.got, &d)
	if p.failing.Load() {
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// checkSignature verifies "t=<unix>,v1=<hex>" as docs/api.md tells a
// portal to: HMAC-SHA256 under the secret of "<t>." and the body, sent
// within the last five minutes.
func checkSignature(secret, header string, body []byte) string {
	ts, mac, ok := strings.Cut(header, ",")
	ts, ok1 := strings.CutPrefix(ts, "t=")
	mac, ok2 := strings.CutPrefix(mac, "v1=")
	if !ok || !ok1 || !ok2 {
		return "signature header " + header
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || time.Since(time.Unix(sec, 0)).Abs() > 5*time.Minute {
		return "signature time " + ts
	}
	h := hmac.New(sha256.New, []byte(secret))
	h.Write([]byte(ts + "."))
	h.Write(body)
	want := hex.EncodeToString(h.Sum(nil))
	if !hmac.Equal([]byte(want), []byte(mac)) {
		return "signature does not match"
	}
	return ""
}

func (p *portal) deliveries() []*applicationv1.WebhookDelivery {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*applicationv1.WebhookDelivery(nil), p.got...)
}

// waitFor polls until cond holds over the deliveries, or fails.
func (p *portal) waitFor(t *testing.T, what string, cond func([]*applicationv1.WebhookDelivery) bool) []*applicationv1.WebhookDelivery {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := p.deliveries()
		if cond(got) {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after 20 s; %d deliveries", what, len(got))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// deliveredIDs are the application IDs of the changes the portal accepted
// (the deliveries answered 2xx, so not those while failing).
func idsOf(ds []*applicationv1.WebhookDelivery) []string {
	var out []string
	for _, d := range ds {
		for _, c := range d.GetChanges() {
			out = append(out, c.GetApplicationId())
		}
	}
	return out
}

func TestWebhooks(t *testing.T) {
	e := startWith(t, appservice.Options{Webhooks: &appcore.WebhookConfig{
		AllowHTTP: true, MaxAttempts: 3, RetryBase: 50 * time.Millisecond, RetryMax: 100 * time.Millisecond, Timeout: 2 * time.Second,
	}})
	ctx := context.Background()
	p := newPortal(t)
	s001, s002 := e.officer("S001"), e.officer("S002")

	// Only a school's own officer, only http(s) URLs, only this school's cursors.
	_, err := s002.CreateWebhook(ctx, &applicationv1.CreateWebhookRequest{SchoolCode: "S001", Url: p.srv.URL})
	if st := wantCode(t, err, codes.PermissionDenied); rule(st) != "own-school-only" {
		t.Errorf("another school's webhook: reason %q, want own-school-only", rule(st))
	}
	_, err = s001.CreateWebhook(ctx, &applicationv1.CreateWebhookRequest{SchoolCode: "S001", Url: "ftp://portal.example.org/x"})
	if v := violations(wantCode(t, err, codes.InvalidArgument)); v["url"] == "" {
		t.Errorf("ftp URL: violations %v, want one on url", v)
	}
	_, err = s001.CreateWebhook(ctx, &applicationv1.CreateWebhookRequest{SchoolCode: "S001", Url: p.srv.URL, After: "bm90IGEgY3Vyc29y"})
	if v := violations(wantCode(t, err, codes.InvalidArgument)); v["after"] == "" {
		t.Errorf("bad cursor: violations %v, want one on after", v)
	}

	created, err := s001.CreateWebhook(ctx, &applicationv1.CreateWebhookRequest{SchoolCode: "S001", Url: p.srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	hook := created.GetWebhook()
	if len(created.GetSecret()) < 40 || hook.GetCreatedBy() != "officer-S001" {
		t.Fatalf("created %v with secret %q", hook, created.GetSecret())
	}
	p.secret.Store(created.GetSecret())
	if n := e.count(t, `SELECT count(*) FROM webhooks WHERE position($1::bytea IN secret_sealed) > 0`, []byte(created.GetSecret())); n != 0 {
		t.Errorf("the secret is stored in plain text")
	}
	if n := e.count(t, `SELECT count(*) FROM audit_log WHERE method = 'CreateWebhook' AND user_id = 'officer-S001' AND detail LIKE $1`, "%"+hook.GetWebhookId()+"%"); n != 1 {
		t.Errorf("audit rows for the creation: %d, want 1", n)
	}

	// Three submissions of S001 (one change each) and one of S002.
	var first []string
	for _, a := range submit(t, s001, "S001", boarding(newStudent()), boarding(newStudent()), boarding(newStudent())) {
		first = append(first, a.GetApplicationId())
	}
	submit(t, s002, "S002", boarding(newStudent()))
	got := p.waitFor(t, "the first three changes", func(ds []*applicationv1.WebhookDelivery) bool { return len(idsOf(ds)) >= 3 })
	if ids := idsOf(got); !sameSet(ids, first) {
		t.Fatalf("delivered %v, want exactly %v (S001's, each once)", ids, first)
	}
	for _, d := range got {
		if d.GetSchoolCode() != "S001" || d.GetWebhookId() != hook.GetWebhookId() || d.GetAttempt() != 1 || d.GetRedelivery() {
			t.Errorf("delivery %v: want S001's webhook, attempt 1", d)
		}
		if last := d.GetChanges()[len(d.GetChanges())-1]; d.GetNextCursor() != last.GetCursor() {
			t.Errorf("next_cursor %q, want the last change's %q", d.GetNextCursor(), last.GetCursor())
		}
	}

	// The portal fails: two more changes are tried three times, then
	// dead-lettered, and delivery goes on past them.
	p.failing.Store(true)
	var second []string
	for _, a := range submit(t, s001, "S001", boarding(newStudent()), boarding(newStudent())) {
		second = append(second, a.GetApplicationId())
	}
	var letters []*applicationv1.WebhookDeadLetter
	deadline := time.Now().Add(20 * time.Second)
	for len(letters) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no dead letter 20 s after the portal began to fail")
		}
		time.Sleep(20 * time.Millisecond)
		resp, err := s001.ListWebhookDeadLetters(ctx, &applicationv1.ListWebhookDeadLettersRequest{SchoolCode: "S001", WebhookId: hook.GetWebhookId()})
		if err != nil {
			t.Fatal(err)
		}
		letters = resp.GetDeadLetters()
	}
	dl := letters[0]
	if len(letters) != 1 || dl.GetAttempts() != 3 || dl.GetLastError() != "HTTP 500" || dl.GetRedeliveredAt() != nil {
		t.Fatalf("dead letters %v: want one after 3 attempts, last error HTTP 500", letters)
	}
	tries := p.deliveries()[len(got):]
	if len(tries) != 3 {
		t.Fatalf("%d attempts at the failing portal, want 3", len(tries))
	}
	for i, d := range tries {
		if d.GetAttempt() != int32(i+1) || !sameSet(idsOf(tries[i:i+1]), second) {
			t.Errorf("attempt %d: %v, want attempt %d of %v", i+1, d, i+1, second)
		}
	}
	if int(dl.GetChanges()) != len(second) || dl.GetLastCursor() != tries[2].GetNextCursor() || dl.GetAfterCursor() != got[len(got)-1].GetNextCursor() {
		t.Errorf("dead letter %v: want %d changes from %q to %q", dl, len(second), got[len(got)-1].GetNextCursor(), tries[2].GetNextCursor())
	}
	list, err := s001.ListWebhooks(ctx, &applicationv1.ListWebhooksRequest{SchoolCode: "S001"})
	if err != nil || len(list.GetWebhooks()) != 1 {
		t.Fatalf("list webhooks: %v %v", list, err)
	}
	if w := list.GetWebhooks()[0]; w.GetDeliveredCursor() != dl.GetLastCursor() || w.GetFailedAttempts() != 0 {
		t.Errorf("webhook after the dead letter: %v, want delivered up to %q with no failure pending", w, dl.GetLastCursor())
	}

	// A redelivery while the portal still fails is refused, and the letter stays.
	_, err = s001.RedeliverWebhookDeadLetter(ctx, &applicationv1.RedeliverWebhookDeadLetterRequest{SchoolCode: "S001", WebhookId: hook.GetWebhookId(), DeadLetterId: dl.GetDeadLetterId()})
	if st := wantCode(t, err, codes.FailedPrecondition); rule(st) != "webhook-delivery-failed" {
		t.Errorf("redelivery to a failing portal: reason %q, want webhook-delivery-failed", rule(st))
	}

	// The portal is back: a new change is delivered (not the dead letter's),
	// and the dead letter is redelivered on request.
	p.failing.Store(false)
	third := submit(t, s001, "S001", boarding(newStudent()))[0].GetApplicationId()
	before := len(p.deliveries())
	got = p.waitFor(t, "the change after the dead letter", func(ds []*applicationv1.WebhookDelivery) bool { return len(ds) > before })
	if ids := idsOf(got[before:]); !sameSet(ids, []string{third}) {
		t.Errorf("after the dead letter: delivered %v, want only %s", ids, third)
	}
	re, err := s001.RedeliverWebhookDeadLetter(ctx, &applicationv1.RedeliverWebhookDeadLetterRequest{SchoolCode: "S001", WebhookId: hook.GetWebhookId(), DeadLetterId: dl.GetDeadLetterId()})
	if err != nil || re.GetRedeliveredAt() == nil {
		t.Fatalf("redeliver: %v %v", re, err)
	}
	last := p.deliveries()[len(p.deliveries())-1]
	if !last.GetRedelivery() || !sameSet(idsOf([]*applicationv1.WebhookDelivery{last}), second) {
		t.Errorf("redelivery %v: want the dead letter's changes %v, marked redelivery", last, second)
	}

	// Deleted, it delivers nothing more.
	if _, err := s001.DeleteWebhook(ctx, &applicationv1.DeleteWebhookRequest{SchoolCode: "S001", WebhookId: hook.GetWebhookId()}); err != nil {
		t.Fatal(err)
	}
	n := len(p.deliveries())
	submit(t, s001, "S001", boarding(newStudent()))
	time.Sleep(500 * time.Millisecond)
	if got := len(p.deliveries()); got != n {
		t.Errorf("%d deliveries after the webhook was deleted", got-n)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.bad) > 0 {
		t.Errorf("the portal refused requests: %v", p.bad)
	}
}

// TestWebhookHTTPOnlyOutsideProduction: with http not allowed, an http URL
// is refused.
func TestWebhookHTTPOnlyOutsideProduction(t *testing.T) {
	e := startWith(t, appservice.Options{Webhooks: &appcore.WebhookConfig{}})
	_, err := e.officer("S001").CreateWebhook(context.Background(), &applicationv1.CreateWebhookRequest{SchoolCode: "S001", Url: "http://portal.example.org/x"})
	if v := violations(wantCode(t, err, codes.InvalidArgument)); !strings.Contains(v["url"], "https") {
		t.Errorf("http URL: violations %v, want one on url asking for https", v)
	}
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	seen := map[string]int{}
	for _, x := range a {
		seen[x]++
	}
	for _, x := range b {
		if seen[x] != 1 {
			return false
		}
		seen[x]--
	}
	return true
}
