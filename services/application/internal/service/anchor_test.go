package service_test

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/edubureau/studentaid/pkg/auth"
	"github.com/edubureau/studentaid/pkg/config"
	"github.com/edubureau/studentaid/pkg/events"
	"github.com/edubureau/studentaid/pkg/natsx"
	applicationv1 "github.com/edubureau/studentaid/proto/gen/aid/application/v1"
	commonv1 "github.com/edubureau/studentaid/proto/gen/aid/common/v1"
	eventsv1 "github.com/edubureau/studentaid/proto/gen/aid/events/v1"
	"github.com/edubureau/studentaid/services/application/anchor"
	appservice "github.com/edubureau/studentaid/services/application/internal/service"
)

// devTrailPublicKey is the development signing key's public half, derived
// here with crypto/ed25519 from the seed in pkg/config.
func devTrailPublicKey(t *testing.T) ed25519.PublicKey {
	t.Helper()
	_, seed, _ := strings.Cut(config.DevTrailSigningKeys, ":")
	b, err := base64.StdEncoding.DecodeString(seed)
	if err != nil {
		t.Fatal(err)
	}
	return ed25519.NewKeyFromSeed(b).Public().(ed25519.PublicKey)
}

// waitCheckpoint polls ExportCheckpoint until its tree has at least size
// leaves (and, if after is set, it is a later stream message).
func waitCheckpoint(t *testing.T, c applicationv1.ApplicationServiceClient, size, after uint64) *applicationv1.ExportCheckpointResponse {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := c.ExportCheckpoint(context.Background(), &applicationv1.ExportCheckpointRequest{})
		if err == nil && resp.GetCheckpoint().GetTreeSize() >= size && resp.GetCheckpoint().GetStreamSequence() > after {
			return resp
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no checkpoint of %d leaves after stream sequence %d in time", size, after)
	return nil
}

// leafOf is RFC 6962's leaf hash of a stored entry hash, computed here.
func leafOf(t *testing.T, entryHash string) []byte {
	t.Helper()
	b, err := hex.DecodeString(entryHash)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(append([]byte{0}, b...))
	return h[:]
}

// TestTrailAnchoredByCheckpoints: the service signs checkpoints of the tree
// over all trail entries, publishes them to AID_CHECKPOINTS (which refuses
// deletes and purges), signs one per confirmed batch, and VerifyTrail proves
// the entries against the stream's checkpoint.
func TestTrailAnchoredByCheckpoints(t *testing.T) {
	t.Parallel()
	e := startWith(t, appservice.Options{CheckpointInterval: 100 * time.Millisecond})
	ctx := context.Background()
	officer := e.officer("S001")
	auditor := e.client("aud-1", auth.RoleAuditor, "AUDIT")
	apps := submit(t, officer, "S001", boarding(newStudent()), boarding(newStudent()))

	resp := waitCheckpoint(t, auditor, 2, 0)
	cp := resp.GetCheckpoint()
	if cp.GetTreeSize() != 2 {
		t.Fatalf("tree size %d, want the 2 submissions' entries", cp.GetTreeSize())
	}
	// The root, computed here from RFC 6962's definitions: both entries
	// were written by one transaction, so they are in application order.
	ids := []string{apps[0].GetApplicationId(), apps[1].GetApplicationId()}
	slices.Sort(ids)
	var l0, l1 []byte
	for i, id := range ids {
		tr := trailOf(t, officer, id)
		if i == 0 {
			l0 = leafOf(t, tr[0].GetHash())
		} else {
			l1 = leafOf(t, tr[0].GetHash())
		}
	}
	root := sha256.Sum256(slices.Concat([]byte{1}, l0, l1))
	if cp.GetRootHash() != hex.EncodeToString(root[:]) {
		t.Fatalf("root %s, want %x", cp.GetRootHash(), root)
	}
	text := fmt.Sprintf("aid.application.trail.checkpoint.v1\n%d\n%s\n%s\n%s\n", cp.GetTreeSize(), cp.GetRootHash(),
		cp.GetTime().AsTime().UTC().Format("2006-01-02T15:04:05.000000Z"), cp.GetKeyId())
	if !ed25519.Verify(devTrailPublicKey(t), []byte(text), cp.GetSignature()) {
		t.Fatal("the checkpoint's signature does not verify with the development public key")
	}
	if !strings.Contains(string(resp.GetCheckpointJson()), cp.GetRootHash()) {
		t.Fatalf("checkpoint JSON %s", resp.GetCheckpointJson())
	}

	// The stream lies outside the database and keeps what it got.
	stream, err := e.js.Stream(ctx, natsx.CheckpointStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !info.Config.DenyDelete || !info.Config.DenyPurge || info.Config.Subjects[0] != "trail.checkpoints.v1" {
		t.Fatalf("stream config %+v", info.Config)
	}
	if err := stream.DeleteMsg(ctx, cp.GetStreamSequence()); err == nil {
		t.Fatal("a checkpoint was deleted from the stream")
	}
	if err := stream.Purge(ctx); err == nil {
		t.Fatal("the checkpoint stream was purged")
	}

	for _, a := range apps {
		v, err := auditor.VerifyTrail(ctx, &applicationv1.VerifyTrailRequest{ApplicationId: a.GetApplicationId()})
		if err != nil {
			t.Fatal(err)
		}
		if !v.GetOk() || v.GetAnchoredEntries() != 1 || v.GetCheckpoint().GetTreeSize() != 2 {
			t.Fatalf("VerifyTrail: %v", v)
		}
		var names []string
		for _, c := range v.GetChecks() {
			names = append(names, c.GetName())
		}
		if want := []string{"chain", "head", "checkpoint-signature", "tree-root", "checkpoint-consistency", "inclusion"}; !slices.Equal(names, want) {
			t.Fatalf("checks %v, want %v", names, want)
		}
	}

	// A confirmed batch gets a checkpoint even when the tree did not grow.
	batch := events.MustNew(time.Now(), financeOfficer, events.Keys{BatchID: "B-anchor-1"}, &eventsv1.BatchConfirmed{})
	e.publish(t, batch, batch.GetEventId())
	deadline := time.Now().Add(15 * time.Second)
	for e.count(t, `SELECT count(*) FROM trail_checkpoints WHERE reason = 'batch B-anchor-1 confirmed'`) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("no checkpoint for the confirmed batch")
		}
		time.Sleep(50 * time.Millisecond)
	}
	later := waitCheckpoint(t, auditor, 2, cp.GetStreamSequence())
	if later.GetCheckpoint().GetRootHash() != cp.GetRootHash() {
		t.Fatalf("the tree changed without new entries: %v", later.GetCheckpoint())
	}

	// The insert-only anchor tables refuse the service's edits as the trail does.
	for _, sql := range []string{`UPDATE trail_leaves SET leaf_hash = leaf_hash`, `DELETE FROM trail_checkpoints`} {
		if _, err := e.pool.Exec(ctx, sql); err == nil || !strings.Contains(err.Error(), "insert-only") {
			t.Fatalf("%s: %v", sql, err)
		}
	}
}

// rewrite changes the reason of entry position of application id and
// re-chains every entry after it and the trail head, as a database owner
// could: triggers off, every hash recomputed with anchor.EntryHash. With
// leaves set it also rewrites the tree's leaves to match.
func rewrite(t *testing.T, e *env, id string, position int64, leaves bool) {
	t.Helper()
	ctx := context.Background()
	tx, err := e.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, `SET LOCAL session_replication_role = replica`); err != nil {
		t.Fatal(err)
	}
	rows, err := tx.Query(ctx, `SELECT application_id::text, position, event_id::text, type, occurred_at, actor_user_id, actor_role, actor_org,
		status, reason, amount_fen, batch_id, prev_hash FROM trail WHERE application_id = $1 ORDER BY position`, id)
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		e    anchor.Entry
		prev string
	}
	all, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
		var x row
		err := r.Scan(&x.e.ApplicationID, &x.e.Position, &x.e.EventID, &x.e.Type, &x.e.OccurredAt, &x.e.ActorUser, &x.e.ActorRole,
			&x.e.ActorOrg, &x.e.Status, &x.e.Reason, &x.e.AmountFen, &x.e.BatchID, &x.prev)
		return x, err
	})
	if err != nil {
		t.Fatal(err)
	}
	prev := anchor.GenesisHash
	for _, x := range all {
		if x.e.Position == position {
			x.e.Reason = "forged by the database owner"
		}
		h := anchor.EntryHash(prev, x.e)
		if _, err := tx.Exec(ctx, `UPDATE trail SET reason = $3, prev_hash = $4, hash = $5 WHERE application_id = $1 AND position = $2`,
			id, x.e.Position, x.e.Reason, prev, h); err != nil {
			t.Fatal(err)
		}
		if leaves {
			if _, err := tx.Exec(ctx, `UPDATE trail_leaves SET leaf_hash = $3 WHERE application_id = $1 AND position = $2`, id, x.e.Position, leafOf(t, h)); err != nil {
				t.Fatal(err)
			}
		}
		prev = h
	}
	if _, err := tx.Exec(ctx, `UPDATE applications SET trail_head = $2 WHERE id = $1`, id, prev); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestConsistentRewriteIsDetected: an entry rewritten as a database owner
// would, with the chain and the head recomputed, passes the chain checks,
// and is caught against the checkpoint on the stream.
func TestConsistentRewriteIsDetected(t *testing.T) {
	t.Parallel()
	e := startWith(t, appservice.Options{CheckpointInterval: 100 * time.Millisecond})
	ctx := context.Background()
	officer := e.officer("S001")
	auditor := e.client("aud-1", auth.RoleAuditor, "AUDIT")
	apps := submit(t, officer, "S001", boarding(newStudent()), boarding(newStudent()), boarding(newStudent()))
	for _, a := range apps {
		ev := downstream(a, schoolReviewer, "", &eventsv1.SchoolReviewApproved{AmountFen: 50000})
		e.publish(t, ev, ev.GetEventId())
	}
	for _, a := range apps {
		e.waitFor(t, officer, a.GetApplicationId(), "IN_NOTICE", hasStatus(commonv1.ApplicationStatus_APPLICATION_STATUS_IN_NOTICE))
	}
	waitCheckpoint(t, auditor, 6, 0)
	verify := func(id string) *applicationv1.VerifyTrailResponse {
		t.Helper()
		v, err := auditor.VerifyTrail(ctx, &applicationv1.VerifyTrailRequest{ApplicationId: id})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	failed := func(v *applicationv1.VerifyTrailResponse) []string {
		var out []string
		for _, c := range v.GetChecks() {
			if !c.GetOk() {
				out = append(out, c.GetName())
			}
		}
		return out
	}
	if v := verify(apps[0].GetApplicationId()); !v.GetOk() || v.GetAnchoredEntries() != 2 {
		t.Fatalf("before: %v", v)
	}

	// The trail alone rewritten: its leaves no longer match.
	rewrite(t, e, apps[0].GetApplicationId(), 1, false)
	v := verify(apps[0].GetApplicationId())
	if v.GetOk() || !slices.Equal(failed(v), []string{"inclusion"}) || !strings.Contains(v.GetProblem(), "does not match its leaf") {
		t.Fatalf("trail rewritten: %v", v)
	}
	if v.GetChecks()[0].GetName() != "chain" || !v.GetChecks()[0].GetOk() || !v.GetChecks()[1].GetOk() {
		t.Fatalf("the rewrite should pass the chain and head checks: %v", v)
	}

	// The trail and its leaves rewritten: the stored tree no longer gives the
	// stream's root, and the entries are not in its tree.
	rewrite(t, e, apps[1].GetApplicationId(), 2, true)
	v = verify(apps[1].GetApplicationId())
	if v.GetOk() || !slices.Equal(failed(v), []string{"tree-root", "inclusion"}) {
		t.Fatalf("trail and leaves rewritten: %v", v)
	}
	// Now every application's check fails on the tree, and the exports refuse.
	if v := verify(apps[2].GetApplicationId()); v.GetOk() || !slices.Contains(failed(v), "tree-root") {
		t.Fatalf("an untouched application beside a rewritten tree: %v", v)
	}
	_, err := auditor.ExportTrailLeaves(ctx, &applicationv1.ExportTrailLeavesRequest{})
	wantCode(t, err, codes.FailedPrecondition)
}

// TestExportedRangeVerifiesOffline: what the export RPCs give an auditor
// verifies offline, and a tampered copy does not.
func TestExportedRangeVerifiesOffline(t *testing.T) {
	t.Parallel()
	e := startWith(t, appservice.Options{CheckpointInterval: 100 * time.Millisecond})
	ctx := context.Background()
	officer := e.officer("S001")
	auditor := e.client("aud-1", auth.RoleAuditor, "AUDIT")
	apps := submit(t, officer, "S001", boarding(newStudent()), boarding(newStudent()), boarding(newStudent()))
	waitCheckpoint(t, auditor, 3, 0)
	keys := anchor.VerifyKeys{"dev-trail-1": devTrailPublicKey(t)}

	for _, r := range [][2]uint64{{0, 0}, {1, 2}, {2, 3}} {
		resp, err := auditor.ExportTrailLeaves(ctx, &applicationv1.ExportTrailLeavesRequest{Start: r[0], End: r[1]})
		if err != nil {
			t.Fatal(err)
		}
		var x anchor.RangeExport
		if err := jsonUnmarshal(resp.GetExportJson(), &x); err != nil {
			t.Fatal(err)
		}
		if _, err := anchor.VerifyRange(x, keys); err != nil {
			t.Fatalf("range %v: %v", r, err)
		}
		x.Leaves[0].Entry.AmountFen++
		x.Leaves[0].EntryHash = anchor.EntryHash(x.Leaves[0].PrevHash, x.Leaves[0].Entry)
		x.Leaves[0].LeafHash = ""
		if _, err := anchor.VerifyRange(x, keys); err == nil {
			t.Fatalf("range %v: a rehashed, changed entry verified", r)
		}
	}
	proof, err := auditor.GetInclusionProof(ctx, &applicationv1.GetInclusionProofRequest{ApplicationId: apps[1].GetApplicationId()})
	if err != nil {
		t.Fatal(err)
	}
	var ix anchor.InclusionExport
	if err := jsonUnmarshal(proof.GetProofJson(), &ix); err != nil {
		t.Fatal(err)
	}
	if err := anchor.VerifyInclusionExport(ix, keys); err != nil || len(ix.Leaves) != 1 || len(ix.Leaves[0].Path) != 2 {
		t.Fatalf("inclusion proof %+v: %v", ix, err)
	}
	_, err = auditor.ExportTrailLeaves(ctx, &applicationv1.ExportTrailLeavesRequest{Start: 2, End: 9})
	wantCode(t, err, codes.InvalidArgument)
	_, err = officer.ExportCheckpoint(ctx, &applicationv1.ExportCheckpointRequest{})
	wantCode(t, err, codes.PermissionDenied)
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// TestVerifyTrailReadsTheStream: VerifyTrail checks against the stream's
// latest checkpoint, not the service's own table: a checkpoint published
// there with another key, or with a root the stored tree does not give, is
// reported.
func TestVerifyTrailReadsTheStream(t *testing.T) {
	t.Parallel()
	e := startWith(t, appservice.Options{CheckpointInterval: 100 * time.Millisecond})
	ctx := context.Background()
	officer := e.officer("S001")
	auditor := e.client("aud-1", auth.RoleAuditor, "AUDIT")
	apps := submit(t, officer, "S001", boarding(newStudent()))
	id := apps[0].GetApplicationId()
	good := waitCheckpoint(t, auditor, 1, 0).GetCheckpoint()

	publish := func(key anchor.SigningKey, size uint64, root anchor.Hash) {
		t.Helper()
		c := key.Sign(size, root, time.Now())
		ev := events.MustNew(c.Time, events.Actor("mallory", "service", "application"), events.Keys{}, &eventsv1.TrailCheckpointed{
			TreeSize: c.TreeSize, RootHash: c.Root[:], SignedAt: timestamppb.New(c.Time), KeyId: c.KeyID, Signature: c.Signature})
		b, err := events.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.js.Publish(ctx, natsx.CheckpointSubject, b); err != nil {
			t.Fatal(err)
		}
	}
	failedCheck := func() string {
		t.Helper()
		v, err := auditor.VerifyTrail(ctx, &applicationv1.VerifyTrailRequest{ApplicationId: id})
		if err != nil {
			t.Fatal(err)
		}
		if v.GetOk() {
			t.Fatalf("VerifyTrail ok against a forged checkpoint: %v", v)
		}
		for _, c := range v.GetChecks() {
			if !c.GetOk() {
				return c.GetName()
			}
		}
		return ""
	}
	root, err := anchor.ParseHash(good.GetRootHash())
	if err != nil {
		t.Fatal(err)
	}
	// Another key, same key ID.
	other, err := anchor.ParseSigningKeys("dev-trail-1:" + base64.StdEncoding.EncodeToString(make([]byte, 32)))
	if err != nil {
		t.Fatal(err)
	}
	publish(other[0], good.GetTreeSize(), root)
	if got := failedCheck(); got != "checkpoint-signature" {
		t.Fatalf("a checkpoint signed with another key: failed %q", got)
	}
	// The right key, a root the database does not give.
	dev, err := anchor.ParseSigningKeys(config.DevTrailSigningKeys)
	if err != nil {
		t.Fatal(err)
	}
	publish(dev[0], good.GetTreeSize(), anchor.LeafHash([]byte("another history")))
	if got := failedCheck(); got != "tree-root" {
		t.Fatalf("a checkpoint of another tree: failed %q", got)
	}
}
