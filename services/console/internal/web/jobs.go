package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/edubureau/studentaid/pkg/auth"
)

// Jobs runs long work (checking and submitting an upload, bulk decisions)
// in the background and keeps how far it is in the console's schema, so
// the page can show progress from any replica. Work lost with its process
// shows as interrupted; every step it sends is idempotent or all or
// nothing, so starting it again is safe.
type Jobs struct {
	pool *pgxpool.Pool
	log  *slog.Logger
	now  func() time.Time
}

// Job is one piece of long work.
type Job struct {
	ID        uuid.UUID
	Kind      string
	UserID    string
	Org       string
	Subject   string
	Total     int
	Done      int
	State     string
	Result    json.RawMessage
	CreatedAt time.Time
	UpdatedAt time.Time
}

// stale is how long a running job may go without progress before it is
// shown as interrupted.
const stale = 2 * time.Minute

// Interrupted reports whether the job's process stopped before it ended.
func (j Job) Interrupted(now time.Time) bool {
	return j.State == "running" && now.Sub(j.UpdatedAt) > stale
}

// Percent is how far the job is, 0 to 100.
func (j Job) Percent() int {
	if j.Total <= 0 {
		return 100
	}
	return j.Done * 100 / j.Total
}

// Progress reports work done; Fail and Finish end the job.
type Progress struct {
	jobs *Jobs
	id   uuid.UUID
}

// Step records that done of the job's total are done.
func (p Progress) Step(ctx context.Context, done int) {
	if _, err := p.jobs.pool.Exec(ctx, `UPDATE jobs SET done = $2, updated_at = $3 WHERE id = $1`, p.id, done, p.jobs.now().UTC()); err != nil {
		p.jobs.log.ErrorContext(ctx, "job progress", "job", p.id, "err", err)
	}
}

// Start records a job for id and runs fn in the background; fn's result
// (JSON) is kept for the job's page, its error ends the job failed.
func (j *Jobs) Start(ctx context.Context, id auth.Identity, kind, subject string, total int, fn func(ctx context.Context, p Progress) (any, error)) (uuid.UUID, error) {
	jid, err := uuid.NewV7()
	if err != nil {
		return uuid.Nil, err
	}
	now := j.now().UTC()
	if _, err := j.pool.Exec(ctx, `INSERT INTO jobs (id, kind, user_id, org, subject, total, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)`,
		jid, kind, id.UserID, id.Org, subject, total, now); err != nil {
		return uuid.Nil, fmt.Errorf("record job: %w", err)
	}
	bg := context.WithoutCancel(ctx)
	go func() {
		res, err := fn(bg, Progress{jobs: j, id: jid})
		state := "done"
		if err != nil {
			state = "failed"
			if res == nil {
				res = map[string]string{"error": err.Error()}
			}
		}
		b, merr := json.Marshal(res)
		if merr != nil {
			j.log.ErrorContext(bg, "job result", "job", jid, "err", merr)
			b, state = []byte(`{}`), "failed"
		}
		if _, err := j.pool.Exec(bg, `UPDATE jobs SET state = $2, result = $3, done = CASE WHEN $2 = 'done' THEN total ELSE done END, updated_at = $4 WHERE id = $1`,
			jid, state, b, j.now().UTC()); err != nil {
			j.log.ErrorContext(bg, "job end", "job", jid, "err", err)
		}
	}()
	return jid, nil
}

// Get returns the user's job; another user's is not found.
func (j *Jobs) Get(ctx context.Context, userID string, id uuid.UUID) (Job, error) {
	var out Job
	err := j.pool.QueryRow(ctx, `SELECT id, kind, user_id, org, subject, total, done, state, result, created_at, updated_at FROM jobs WHERE id = $1 AND user_id = $2`, id, userID).
		Scan(&out.ID, &out.Kind, &out.UserID, &out.Org, &out.Subject, &out.Total, &out.Done, &out.State, &out.Result, &out.CreatedAt, &out.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return Job{}, errNotFound
	}
	return out, err
}

var errNotFound = errors.New("not found")

// jobView is the job page's data.
type jobView struct {
	Job         Job
	Interrupted bool
	Result      any
}

func (s *Server) loadJob(q *request) (Job, bool) {
	id, err := uuid.Parse(q.r.PathValue("id"))
	if err != nil {
		q.fail(http.StatusNotFound, q.t("err.notfound"))
		return Job{}, false
	}
	j, err := s.jobs.Get(q.r.Context(), q.sess.ID.UserID, id)
	if errors.Is(err, errNotFound) {
		q.fail(http.StatusNotFound, q.t("err.notfound"))
		return Job{}, false
	}
	if err != nil {
		s.log.ErrorContext(q.r.Context(), "job", "err", err)
		q.fail(http.StatusInternalServerError, q.t("err.unavailable"))
		return Job{}, false
	}
	return j, true
}

// jobPage shows a job: a progress bar while it runs (the page's script
// polls /progress and reloads at the end), its outcome after.
func (s *Server) jobPage(q *request) {
	j, ok := s.loadJob(q)
	if !ok {
		return
	}
	v := jobView{Job: j, Interrupted: j.Interrupted(s.now())}
	if j.State != "running" {
		switch j.Kind {
		case jobCheck, jobSubmit:
			var r uploadResult
			if err := json.Unmarshal(j.Result, &r); err == nil {
				v.Result = r
			}
		case jobDecide:
			var r decideResult
			if err := json.Unmarshal(j.Result, &r); err == nil {
				v.Result = r
			}
		case jobCompare:
			var r compareResult
			if err := json.Unmarshal(j.Result, &r); err == nil {
				v.Result = r
			}
		}
	}
	q.render("job.html", "job."+j.Kind, v)
}

func (s *Server) jobProgress(q *request) {
	j, ok := s.loadJob(q)
	if !ok {
		return
	}
	q.w.Header().Set("Content-Type", "application/json")
	p := struct {
		Done        int    `json:"done"`
		Total       int    `json:"total"`
		State       string `json:"state"`
		Percent     int    `json:"percent"`
		Interrupted bool   `json:"interrupted"`
	}{j.Done, j.Total, j.State, j.Percent(), j.Interrupted(s.now())}
	if err := json.NewEncoder(q.w).Encode(p); err != nil {
		s.log.WarnContext(q.r.Context(), "job progress", "err", err)
	}
}
