package web

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/edubureau/studentaid/pkg/auth"
)

// Session is a signed-in user.
type Session struct {
	tokenHash []byte
	ID        auth.Identity
	Method    string
	CSRF      string
	Created   time.Time
	LastSeen  time.Time
	Expires   time.Time
}

// Sessions keeps sessions in the console's schema, so that any replica
// serves any user and a sign-out ends the session everywhere.
type Sessions struct {
	pool *pgxpool.Pool
	// Idle ends a session not used for this long; Max ends any session
	// this long after sign-in.
	Idle, Max time.Duration
	now       func() time.Time
}

// errNoSession is a missing, unknown, ended or expired session.
var errNoSession = errors.New("no session")

func randomToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func hashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// Create starts a session for id and returns the cookie's token.
func (s *Sessions) Create(ctx context.Context, id auth.Identity, method string) (string, *Session, error) {
	token, err := randomToken()
	if err != nil {
		return "", nil, err
	}
	csrf, err := randomToken()
	if err != nil {
		return "", nil, err
	}
	now := s.now().UTC()
	sess := &Session{tokenHash: hashToken(token), ID: id, Method: method, CSRF: csrf, Created: now, LastSeen: now, Expires: now.Add(s.Max)}
	_, err = s.pool.Exec(ctx, `INSERT INTO sessions (token_sha256, user_id, role, org, method, csrf, created_at, last_seen, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8)`, sess.tokenHash, id.UserID, string(id.Role), id.Org, method, csrf, now, sess.Expires)
	if err != nil {
		return "", nil, fmt.Errorf("create session: %w", err)
	}
	return token, sess, nil
}

// touchEvery bounds how often a session's last use is written.
const touchEvery = 30 * time.Second

// Get returns the live session of token and marks it used. A session idle
// for longer than Idle is ended (reason "idle") and refused.
func (s *Sessions) Get(ctx context.Context, token string) (*Session, error) {
	if token == "" {
		return nil, errNoSession
	}
	sess := &Session{tokenHash: hashToken(token)}
	var role string
	err := s.pool.QueryRow(ctx, `SELECT user_id, role, org, method, csrf, created_at, last_seen, expires_at FROM sessions
		WHERE token_sha256 = $1 AND ended_at IS NULL`, sess.tokenHash).
		Scan(&sess.ID.UserID, &role, &sess.ID.Org, &sess.Method, &sess.CSRF, &sess.Created, &sess.LastSeen, &sess.Expires)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errNoSession
	}
	if err != nil {
		return nil, fmt.Errorf("read session: %w", err)
	}
	sess.ID.Role = auth.Role(role)
	now := s.now().UTC()
	switch {
	case now.After(sess.Expires):
		return nil, s.end(ctx, sess.tokenHash, "expired")
	case now.Sub(sess.LastSeen) > s.Idle:
		return nil, s.end(ctx, sess.tokenHash, "idle")
	case now.Sub(sess.LastSeen) > touchEvery:
		if _, err := s.pool.Exec(ctx, `UPDATE sessions SET last_seen = $2 WHERE token_sha256 = $1 AND ended_at IS NULL`, sess.tokenHash, now); err != nil {
			return nil, fmt.Errorf("touch session: %w", err)
		}
		sess.LastSeen = now
	}
	return sess, nil
}

// End ends the session (sign-out).
func (s *Sessions) End(ctx context.Context, sess *Session) error {
	if err := s.end(ctx, sess.tokenHash, "signed out"); !errors.Is(err, errNoSession) {
		return err
	}
	return nil
}

// end marks a session ended and returns errNoSession (or the failure).
func (s *Sessions) end(ctx context.Context, tokenHash []byte, reason string) error {
	if _, err := s.pool.Exec(ctx, `UPDATE sessions SET ended_at = $2, end_reason = $3 WHERE token_sha256 = $1 AND ended_at IS NULL`,
		tokenHash, s.now().UTC(), reason); err != nil {
		return fmt.Errorf("end session: %w", err)
	}
	return errNoSession
}
