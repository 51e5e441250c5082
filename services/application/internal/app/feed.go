package app

import (
	"context"
	"encoding/base64"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/edubureau/studentaid/pkg/apperr"
	"github.com/edubureau/studentaid/pkg/auth"
	"github.com/edubureau/studentaid/services/application/internal/adapters"
)

// Limits of ListChanges.
const (
	DefaultChangesPageSize = 100
	MaxChangesPageSize     = 1000
	// MaxChangesWait is the longest a long-poll waits for a change.
	MaxChangesWait = 30 * time.Second
)

// Re-check intervals of a waiting long-poll. After a wake that found
// nothing, or when committed changes are held behind an older transaction
// still in flight, it looks again soon, then less often; with nothing
// pending it looks now and then in case a wake was missed.
const (
	pendingRecheckFirst = 20 * time.Millisecond
	pendingRecheckMax   = 200 * time.Millisecond
	idleRecheck         = 5 * time.Second
)

// ChangesRequest asks for a school's changes after a cursor.
type ChangesRequest struct {
	SchoolCode string
	// After is the cursor of the last change the caller has; "" is the
	// start of the feed.
	After    string
	PageSize int
	// Wait is how long to wait for at least one change when there is none
	// after the cursor yet (0: answer at once; at most MaxChangesWait).
	Wait time.Duration
}

// Change is one change of an application in a school's feed.
type Change struct {
	adapters.FeedChange
	// Cursor is the feed's position just after this change.
	Cursor string
}

// ChangesPage is an answer of Changes.
type ChangesPage struct {
	Changes []Change
	// NextCursor is where the next call starts: the last change's cursor,
	// or the request's when there was none.
	NextCursor string
}

// Changes returns the changes of a school's applications after the
// request's cursor, oldest first, each exactly once across calls that pass
// on NextCursor. When there is none yet it waits up to req.Wait for one.
// School roles read only their own school (PermissionDenied, rule
// own-school-only). Returns InvalidArgument for a bad school code, cursor
// (including another school's), page size or wait.
func (s *Service) Changes(ctx context.Context, who auth.Identity, req ChangesRequest) (ChangesPage, error) {
	var v apperr.Violations
	checkCode(&v, "school_code", req.SchoolCode, true)
	if err := v.Err(); err != nil {
		return ChangesPage{}, err
	}
	if who.Role.SchoolBound() && req.SchoolCode != who.Org {
		return ChangesPage{}, apperr.Denied(apperr.ReasonOwnSchoolOnly, "you may only follow your own school's changes")
	}
	after, ok := decodeCursor(req.SchoolCode, req.After)
	if !ok {
		v.Addf("after", "is not a cursor of this school's feed: pass back a cursor or next_cursor exactly as received, or leave it empty to start from the beginning")
	}
	size := req.PageSize
	switch {
	case size == 0:
		size = DefaultChangesPageSize
	case size < 1 || size > MaxChangesPageSize:
		v.Addf("page_size", "must be between 1 and %d", MaxChangesPageSize)
	}
	if req.Wait < 0 || req.Wait > MaxChangesWait {
		v.Addf("wait_seconds", "must be between 0 and %d", int(MaxChangesWait/time.Second))
	}
	if err := v.Err(); err != nil {
		return ChangesPage{}, err
	}

	var deadline <-chan time.Time
	if req.Wait > 0 {
		t := time.NewTimer(req.Wait)
		defer t.Stop()
		deadline = t.C
	}
	recheck := time.Duration(0)
	for {
		// Take the wake channel before reading, so a commit between the
		// read and the wait is not missed.
		woken := s.feed.wait()
		got, err := s.store.Changes(ctx, s.pool, req.SchoolCode, after, size)
		if err != nil {
			return ChangesPage{}, err
		}
		if len(got) > 0 || deadline == nil {
			return changesPage(req.SchoolCode, after, got), nil
		}
		if recheck == 0 {
			// A change that committed before this call began, held
			// behind an older transaction, wakes nobody: look again soon.
			held, err := s.store.ChangesHeld(ctx, s.pool, req.SchoolCode, after)
			if err != nil {
				return ChangesPage{}, err
			}
			if held {
				recheck = pendingRecheckFirst
			}
		}
		wait := idleRecheck
		if recheck > 0 {
			wait = recheck
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ChangesPage{}, ctx.Err()
		case <-deadline:
			t.Stop()
			return changesPage(req.SchoolCode, after, nil), nil
		case <-woken:
			// Something committed; if it is not readable yet, look
			// again soon.
			recheck = pendingRecheckFirst
		case <-t.C:
			if recheck > 0 {
				recheck = min(2*recheck, pendingRecheckMax)
			}
		}
		t.Stop()
	}
}

func changesPage(school string, after adapters.FeedPosition, got []adapters.FeedChange) ChangesPage {
	out := ChangesPage{Changes: make([]Change, len(got)), NextCursor: encodeCursor(school, after)}
	for i, c := range got {
		out.Changes[i] = Change{FeedChange: c, Cursor: encodeCursor(school, c.Position)}
	}
	if len(got) > 0 {
		out.NextCursor = out.Changes[len(got)-1].Cursor
	}
	return out
}

// cursorVersion starts every cursor, so that its form can change.
const cursorVersion = "1"

// encodeCursor is the opaque cursor of a position in school's feed.
func encodeCursor(school string, p adapters.FeedPosition) string {
	raw := cursorVersion + ":" + strconv.FormatUint(p.XID, 10) + ":" + strconv.FormatInt(p.Seq, 10) + ":" + school
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

// decodeCursor reads a cursor of school's feed; "" is the start.
func decodeCursor(school, cursor string) (adapters.FeedPosition, bool) {
	if cursor == "" {
		return adapters.FeedPosition{}, true
	}
	raw, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil {
		return adapters.FeedPosition{}, false
	}
	parts := strings.SplitN(string(raw), ":", 4)
	if len(parts) != 4 || parts[0] != cursorVersion || parts[3] != school {
		return adapters.FeedPosition{}, false
	}
	xid, err := strconv.ParseUint(parts[1], 10, 64)
	if err != nil {
		return adapters.FeedPosition{}, false
	}
	seq, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil || seq < 0 {
		return adapters.FeedPosition{}, false
	}
	return adapters.FeedPosition{XID: xid, Seq: seq}, true
}

// ChangesCommitted wakes the long-polls waiting in this process: a
// transaction that may have fed the change feed has committed.
func (s *Service) ChangesCommitted() { s.feed.fire() }

// RunChangeWatch wakes this process's long-polls when another replica
// commits changes: every interval it reads the feed's last identity and
// fires when it moved. It returns when ctx is done.
func (s *Service) RunChangeWatch(ctx context.Context, interval time.Duration, onError func(error)) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	last := int64(-1)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		n, err := s.store.LastChangeSeq(ctx, s.pool)
		if err != nil {
			if ctx.Err() == nil {
				onError(err)
			}
			continue
		}
		if n != last {
			last = n
			s.feed.fire()
		}
	}
}

// broadcast wakes every waiter at once: wait returns a channel that fire
// closes.
type broadcast struct {
	mu sync.Mutex
	ch chan struct{}
}

func (b *broadcast) wait() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ch == nil {
		b.ch = make(chan struct{})
	}
	return b.ch
}

func (b *broadcast) fire() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ch != nil {
		close(b.ch)
		b.ch = nil
	}
}
