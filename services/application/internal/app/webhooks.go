package app

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/edubureau/studentaid/pkg/apperr"
	"github.com/edubureau/studentaid/pkg/audit"
	"github.com/edubureau/studentaid/pkg/auth"
	"github.com/edubureau/studentaid/pkg/db"
	"github.com/edubureau/studentaid/pkg/keyrotation"
	"github.com/edubureau/studentaid/pkg/lease"
	"github.com/edubureau/studentaid/pkg/pii"
	"github.com/edubureau/studentaid/pkg/wait"
	"github.com/edubureau/studentaid/services/application/internal/adapters"
)

// Webhook limits.
const (
	// WebhookBatch is the most changes one delivery carries.
	WebhookBatch  = 100
	maxWebhookURL = 2000
	// webhooksAtOnce bounds the deliveries in flight, across webhooks.
	webhooksAtOnce = 8
	// SignatureHeader carries a delivery's signature: "t=<unix seconds>,v1=<hex HMAC-SHA256>".
	SignatureHeader = "Aid-Signature"
)

// WebhookConfig configures webhook deliveries.
type WebhookConfig struct {
	// AllowHTTP accepts http:// URLs (outside production).
	AllowHTTP bool
	// MaxAttempts failed attempts put a delivery's changes in the dead
	// letters; default 8.
	MaxAttempts int
	// RetryBase is the pause after the first failure, doubling up to
	// RetryMax; defaults 1 s and 5 min.
	RetryBase, RetryMax time.Duration
	// Timeout bounds one delivery's request; default 10 s.
	Timeout time.Duration
	// Client sends the deliveries; nil: a client of its own.
	Client *http.Client
	// Encode writes a delivery's JSON body (ports.EncodeDelivery).
	Encode func(Delivery) ([]byte, error)
}

func (c WebhookConfig) withDefaults() WebhookConfig {
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 8
	}
	if c.RetryBase <= 0 {
		c.RetryBase = time.Second
	}
	if c.RetryMax <= 0 {
		c.RetryMax = 5 * time.Minute
	}
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Second
	}
	if c.Client == nil {
		c.Client = &http.Client{Timeout: c.Timeout}
	}
	return c
}

// Delivery is what one POST to a webhook carries.
type Delivery struct {
	WebhookID, SchoolCode string
	Changes               []Change
	NextCursor            string
	Attempt               int
	Redelivery            bool
}

// webhookSecretColumn binds a webhook's sealed secret to its ID.
const webhookSecretColumn = "application.webhooks.secret_sealed"

func webhookSecretBinding(id string) []byte { return pii.Binding(webhookSecretColumn, id) }

// liveWebhooks are the webhooks' sealed secrets, for key rotation.
var liveWebhooks = keyrotation.Table{
	Name: "webhooks", Key: "webhook_id", Bind: "webhook_id", Where: "deleted_at IS NULL",
	Columns: []keyrotation.Column{{Name: "secret_sealed", Binding: webhookSecretBinding}},
}

// Webhook is a webhook as the API shows it.
type Webhook struct {
	adapters.Webhook
	// DeliveredCursor is the feed cursor of After.
	DeliveredCursor string
}

// DeadLetter is a dead letter as the API shows it.
type DeadLetter struct {
	adapters.DeadLetter
	AfterCursor, LastCursor string
}

func webhookOf(w adapters.Webhook) Webhook {
	return Webhook{Webhook: w, DeliveredCursor: encodeCursor(w.SchoolCode, w.After)}
}

// webhookSchool checks the school code and that a school user names their own.
func webhookSchool(who auth.Identity, school string) error {
	var v apperr.Violations
	if school == "" {
		v.Addf("school_code", "is required")
	}
	v.CheckCode("school_code", school)
	if err := v.Err(); err != nil {
		return err
	}
	if who.Role.SchoolBound() && school != who.Org {
		return apperr.Denied(apperr.ReasonOwnSchoolOnly, "you may only manage your own school's webhooks")
	}
	return nil
}

// CreateWebhook records a webhook of the school's change feed and returns
// it with its signing secret, which is shown only here.
func (s *Service) CreateWebhook(ctx context.Context, who auth.Identity, school, rawURL, after string) (Webhook, string, error) {
	if err := webhookSchool(who, school); err != nil {
		return Webhook{}, "", err
	}
	var v apperr.Violations
	s.checkWebhookURL(&v, rawURL)
	from, ok := decodeCursor(school, after)
	if !ok {
		v.Addf("after", "is not a cursor of this school's feed: pass a cursor or next_cursor of ListChanges exactly as received, or leave it empty to start from the beginning")
	}
	if err := v.Err(); err != nil {
		return Webhook{}, "", err
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return Webhook{}, "", fmt.Errorf("webhook secret: %w", err)
	}
	secret := base64.StdEncoding.EncodeToString(raw)
	id := uuid.NewString()
	sealed, err := s.sealer.Seal(secret, webhookSecretBinding(id))
	if err != nil {
		return Webhook{}, "", fmt.Errorf("seal webhook secret: %w", err)
	}
	w := adapters.Webhook{ID: id, SchoolCode: school, URL: rawURL, SecretSealed: sealed, CreatedBy: who.UserID,
		CreatedAt: s.clock(), After: from, NextAttemptAt: s.clock()}
	err = db.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		if err := s.store.InsertWebhook(ctx, tx, w); err != nil {
			return err
		}
		return audit.Record(ctx, tx, audit.Entry{Method: "CreateWebhook", Outcome: "created",
			Detail: "webhook " + id + " of school " + school + " to " + hostOf(rawURL)})
	})
	if err != nil {
		return Webhook{}, "", err
	}
	s.feed.fire()
	return webhookOf(w), secret, nil
}

func hostOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Host
}

func (s *Service) checkWebhookURL(v *apperr.Violations, raw string) {
	u, err := url.Parse(raw)
	switch {
	case raw == "":
		v.Addf("url", "is required")
	case len(raw) > maxWebhookURL:
		v.Addf("url", "must be at most %d characters", maxWebhookURL)
	case err != nil || u.Host == "" || !u.IsAbs():
		v.Addf("url", "must be an absolute URL such as https://portal.example.org/aid/changes")
	case u.User != nil:
		v.Addf("url", "must not carry a user name or password: the signature authenticates deliveries")
	case u.Fragment != "":
		v.Addf("url", "must not have a fragment (#…)")
	case u.Scheme == "https":
	case u.Scheme == "http" && s.webhooks.AllowHTTP:
	default:
		v.Addf("url", "must use https")
	}
}

// ListWebhooks returns the school's webhooks, newest first.
func (s *Service) ListWebhooks(ctx context.Context, who auth.Identity, school string) ([]Webhook, error) {
	if err := webhookSchool(who, school); err != nil {
		return nil, err
	}
	list, err := s.store.Webhooks(ctx, s.pool, school)
	if err != nil {
		return nil, err
	}
	out := make([]Webhook, len(list))
	for i, w := range list {
		out[i] = webhookOf(w)
	}
	return out, nil
}

// webhook returns the school's webhook or NotFound.
func (s *Service) webhook(ctx context.Context, q db.Querier, school, id string, lock bool) (adapters.Webhook, error) {
	if err := checkID("webhook_id", id); err != nil {
		return adapters.Webhook{}, err
	}
	w, ok, err := s.store.WebhookOf(ctx, q, school, id, lock)
	if err != nil {
		return adapters.Webhook{}, err
	}
	if !ok {
		return adapters.Webhook{}, apperr.New(apperr.NotFound, "school %s has no webhook %s", school, id)
	}
	return w, nil
}

// DeleteWebhook stops a webhook's deliveries.
func (s *Service) DeleteWebhook(ctx context.Context, who auth.Identity, school, id string) (Webhook, error) {
	if err := webhookSchool(who, school); err != nil {
		return Webhook{}, err
	}
	var w adapters.Webhook
	err := db.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		if w, err = s.webhook(ctx, tx, school, id, true); err != nil {
			return err
		}
		if w.DeletedAt != nil {
			return nil
		}
		at := s.clock()
		if err := s.store.DeleteWebhook(ctx, tx, id, at); err != nil {
			return err
		}
		w.DeletedAt = &at
		return audit.Record(ctx, tx, audit.Entry{Method: "DeleteWebhook", Outcome: "deleted", Detail: "webhook " + id + " of school " + school})
	})
	if err != nil {
		return Webhook{}, err
	}
	return webhookOf(w), nil
}

func deadLetterOf(school string, d adapters.DeadLetter) DeadLetter {
	return DeadLetter{DeadLetter: d, AfterCursor: encodeCursor(school, d.After), LastCursor: encodeCursor(school, d.Last)}
}

// ListDeadLetters returns a webhook's dead letters, newest first.
func (s *Service) ListDeadLetters(ctx context.Context, who auth.Identity, school, id string) ([]DeadLetter, error) {
	if err := webhookSchool(who, school); err != nil {
		return nil, err
	}
	if _, err := s.webhook(ctx, s.pool, school, id, false); err != nil {
		return nil, err
	}
	list, err := s.store.DeadLetters(ctx, s.pool, id)
	if err != nil {
		return nil, err
	}
	out := make([]DeadLetter, len(list))
	for i, d := range list {
		out[i] = deadLetterOf(school, d)
	}
	return out, nil
}

// RedeliverDeadLetter sends a dead letter's changes to its webhook again,
// once, now.
func (s *Service) RedeliverDeadLetter(ctx context.Context, who auth.Identity, school, webhookID, id string) (DeadLetter, error) {
	if err := webhookSchool(who, school); err != nil {
		return DeadLetter{}, err
	}
	w, err := s.webhook(ctx, s.pool, school, webhookID, false)
	if err != nil {
		return DeadLetter{}, err
	}
	if err := checkID("dead_letter_id", id); err != nil {
		return DeadLetter{}, err
	}
	d, ok, err := s.store.DeadLetterOf(ctx, s.pool, webhookID, id)
	if err != nil {
		return DeadLetter{}, err
	}
	if !ok {
		return DeadLetter{}, apperr.New(apperr.NotFound, "webhook %s has no dead letter %s", webhookID, id)
	}
	if w.DeletedAt != nil {
		return DeadLetter{}, apperr.New(apperr.FailedPrecondition, "webhook %s was deleted: create a new one, or read the changes with ListChanges", webhookID)
	}
	got, err := s.store.ChangesBetween(ctx, s.pool, school, d.After, d.Last, d.Changes)
	if err != nil {
		return DeadLetter{}, err
	}
	if reason := s.post(ctx, w, changesPage(school, d.After, got).Changes, d.Attempts+1, true); reason != "" {
		_ = audit.Record(context.WithoutCancel(ctx), s.pool, audit.Entry{Method: "RedeliverWebhookDeadLetter", Outcome: "failed",
			Rule: string(apperr.ReasonWebhookDeliveryFailed), Detail: "dead letter " + id + ": " + reason})
		return DeadLetter{}, apperr.Refused(apperr.FailedPrecondition, apperr.ReasonWebhookDeliveryFailed,
			"the webhook's URL did not accept the redelivery (%s); fix the endpoint and redeliver again", reason)
	}
	at := s.clock()
	err = db.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		if err := s.store.DeadLetterRedelivered(ctx, tx, id, at); err != nil {
			return err
		}
		return audit.Record(ctx, tx, audit.Entry{Method: "RedeliverWebhookDeadLetter", Outcome: "redelivered", Detail: "dead letter " + id})
	})
	if err != nil {
		return DeadLetter{}, err
	}
	d.RedeliveredAt = &at
	return deadLetterOf(school, d), nil
}

// Sign returns the Aid-Signature value of body sent at t: the HMAC-SHA256,
// under the webhook's secret, of "<unix seconds>." followed by the body.
func Sign(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts + "."))
	mac.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac.Sum(nil))
}

// post sends one delivery of changes to w; it returns "" when the URL
// answered 2xx, else why not (for the officer: status or network error,
// never the URL's body).
func (s *Service) post(ctx context.Context, w adapters.Webhook, changes []Change, attempt int, redelivery bool) string {
	secret, err := s.sealer.Open(w.SecretSealed, webhookSecretBinding(w.ID))
	if err != nil {
		return "the webhook's secret cannot be opened with this instance's keys"
	}
	d := Delivery{WebhookID: w.ID, SchoolCode: w.SchoolCode, Changes: changes, Attempt: attempt, Redelivery: redelivery}
	if len(changes) > 0 {
		d.NextCursor = changes[len(changes)-1].Cursor
	}
	body, err := s.webhooks.Encode(d)
	if err != nil {
		return "encode: " + err.Error()
	}
	ctx, cancel := context.WithTimeout(ctx, s.webhooks.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return "bad URL"
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Aid-Webhook-Id", w.ID)
	req.Header.Set(SignatureHeader, Sign(secret, s.now(), body))
	resp, err := s.webhooks.Client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return "no answer within " + s.webhooks.Timeout.String()
		}
		return "not reachable"
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return "HTTP " + strconv.Itoa(resp.StatusCode)
	}
	return ""
}

// RunWebhooks delivers due webhooks while l is held: after a commit that
// fed the change feed, and every poll in case another replica's was missed.
// Every move of a webhook's position is fenced by l.
//
// Commits come hundreds a second at the chain's peak; a round starts at most
// every webhookRoundGap, so the deliverer's query does not follow them one
// by one (a change waits at most that much longer).
func (s *Service) RunWebhooks(ctx context.Context, l lease.Lease, poll time.Duration, onError func(error)) error {
	for {
		woken := s.feed.wait()
		started := time.Now()
		if err := s.deliverDue(ctx, l); err != nil && ctx.Err() == nil {
			onError(err)
		}
		t := time.NewTimer(poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-woken:
		case <-t.C:
		}
		t.Stop()
		if !wait.For(ctx, webhookRoundGap-time.Since(started)) {
			return nil
		}
	}
}

// webhookRoundGap is the least time between the starts of two delivery rounds.
const webhookRoundGap = 50 * time.Millisecond

func (s *Service) deliverDue(ctx context.Context, l lease.Lease) error {
	due, err := s.store.DueWebhooks(ctx, s.pool, s.clock(), 256)
	if err != nil {
		return err
	}
	sem := make(chan struct{}, webhooksAtOnce)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for _, w := range due {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := s.deliver(ctx, l, w); err != nil {
				mu.Lock()
				first = cmpErr(first, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return first
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// deliver sends w's next changes, if any, and records the outcome.
func (s *Service) deliver(ctx context.Context, l lease.Lease, w adapters.Webhook) error {
	got, err := s.store.Changes(ctx, s.pool, w.SchoolCode, w.After, WebhookBatch)
	if err != nil || len(got) == 0 {
		return err
	}
	changes := changesPage(w.SchoolCode, w.After, got).Changes
	last := got[len(got)-1].Position
	reason := s.post(ctx, w, changes, w.Attempts+1, false)
	now := s.clock()
	return db.InTx(context.WithoutCancel(ctx), s.pool, func(tx pgx.Tx) error {
		if err := l.Fence(ctx, tx); err != nil {
			return err
		}
		switch {
		case reason == "":
			return s.store.WebhookDelivered(ctx, tx, w.ID, w.After, last, now, true)
		case w.Attempts+1 < s.webhooks.MaxAttempts:
			pause := s.webhooks.RetryBase << min(w.Attempts, 20)
			return s.store.WebhookFailed(ctx, tx, w.ID, w.After, w.Attempts+1, now.Add(min(pause, s.webhooks.RetryMax)), reason)
		default:
			if err := s.store.InsertDeadLetter(ctx, tx, adapters.DeadLetter{ID: uuid.NewString(), WebhookID: w.ID,
				After: w.After, Last: last, Changes: len(got), Attempts: w.Attempts + 1, LastError: reason, FailedAt: now}); err != nil {
				return err
			}
			return s.store.WebhookDelivered(ctx, tx, w.ID, w.After, last, now, false)
		}
	})
}
