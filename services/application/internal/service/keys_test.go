package service_test

import (
	"context"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/edubureau/studentaid/pkg/auth"
	"github.com/edubureau/studentaid/pkg/config"
	"github.com/edubureau/studentaid/pkg/grpcx"
	applicationv1 "github.com/edubureau/studentaid/proto/gen/aid/application/v1"
	keysv1 "github.com/edubureau/studentaid/proto/gen/aid/keys/v1"
)

// Keys of the rotation test besides the development ones ("dev-seal-1",
// "dev-hash-1").
const (
	seal2 = "seal-2:c2Vjb25kLXNlYWwta2V5LWZvci10aGUtcm90YXRpb24="
	hash2 = "hash-2:c2Vjb25kLWhhc2gta2V5LWZvci10aGUtcm90YXRpb24="
)

// rotator returns a KeyRotationService client of e's instance as ops.
func (e *env) rotator(t *testing.T) keysv1.KeyRotationServiceClient {
	t.Helper()
	conn, err := grpcx.Dial(e.run.GRPCAddr, e.keys.Token(t, "ops-1", auth.RoleOps, auth.OrgIT))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return keysv1.NewKeyRotationServiceClient(conn)
}

// TestKeyRotation changes both keys under a running system: applications
// sealed and hashed under the first keys; a replica given the new keys
// first; RotateKeys batch by batch, with a duplicate submitted halfway (when
// some applications are hashed under each key) and refused; then an instance
// holding only the new keys reads everything and still refuses the
// duplicate.
func TestKeyRotation(t *testing.T) {
	t.Parallel()
	e := start(t)
	ctx := context.Background()
	students := []student{newStudent(), newStudent(), newStudent()}
	var apps []*applicationv1.Application
	for _, s := range students {
		apps = append(apps, submit(t, e.officer("S001"), "S001", boarding(s))...)
	}

	both := e.replica(t, seal2+","+config.DevSealKeys, hash2+","+config.DevHashKeys)
	// Before the rotation the database's hashing key is still the first:
	// the replica hashes under it, and the unique index refuses.
	_, err := both.officer("S002").SubmitApplications(ctx, &applicationv1.SubmitApplicationsRequest{SchoolCode: "S002", Term: term,
		Applications: []*applicationv1.NewApplication{boarding(students[0])}})
	wantCode(t, err, codes.AlreadyExists)

	rot := both.rotator(t)
	step, err := rot.RotateKeys(ctx, &keysv1.RotateKeysRequest{BatchSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	if step.GetSealKeyId() != "seal-2" || step.GetHashKeyId() != "hash-2" || step.GetResealed() != 4 || step.GetDone() {
		t.Fatalf("first step %v: want keys seal-2 and hash-2, one application's four values re-sealed", step)
	}
	// The new hashing key is current now, and the applications are hashed
	// under the old one: a duplicate is still refused, through either
	// student's application, and an instance without the new key refuses
	// to hash rather than miss it.
	for _, s := range students {
		_, err := both.officer("S002").SubmitApplications(ctx, &applicationv1.SubmitApplicationsRequest{SchoolCode: "S002", Term: term,
			Applications: []*applicationv1.NewApplication{boarding(s)}})
		wantCode(t, err, codes.AlreadyExists)
	}
	_, err = e.officer("S002").SubmitApplications(ctx, &applicationv1.SubmitApplicationsRequest{SchoolCode: "S002", Term: term,
		Applications: []*applicationv1.NewApplication{boarding(newStudent())}})
	if st := wantCode(t, err, codes.Unavailable); !strings.Contains(st.Message(), "hash-2") {
		t.Errorf("old instance's refusal %q does not name the key it lacks", st.Message())
	}
	// A new student submitted mid-rotation is hashed under the new key.
	late := newStudent()
	apps = append(apps, submit(t, both.officer("S002"), "S002", boarding(late))...)
	students = append(students, late)

	var resealed, rehashed int64 = step.GetResealed(), 0
	for steps := 1; !step.GetDone(); steps++ {
		if steps > 20 {
			t.Fatal("rotation not done after 20 steps")
		}
		if step, err = rot.RotateKeys(ctx, &keysv1.RotateKeysRequest{BatchSize: 1, PageToken: step.GetNextPageToken()}); err != nil {
			t.Fatal(err)
		}
		resealed, rehashed = resealed+step.GetResealed(), rehashed+step.GetRehashed()
	}
	// Three applications under the old keys (the late one was sealed under
	// seal-2 already by the replica, and hashed under hash-2).
	if resealed != 12 || rehashed != 3 {
		t.Errorf("re-sealed %d values and re-hashed %d IDs; want 12 and 3", resealed, rehashed)
	}
	if n := e.count(t, `SELECT count(*) FROM applications WHERE student_id_hash_key <> 'hash-2' OR substring(bank_card_sealed for 8) <> '\x0106'::bytea || 'seal-2'::bytea`); n != 0 {
		t.Errorf("%d applications not under the new keys", n)
	}
	if n := e.count(t, `SELECT count(*) FROM hash_keys`); n != 1 {
		t.Errorf("%d hashing keys remembered after the rotation, want only hash-2", n)
	}
	if n := e.count(t, `SELECT count(*) FROM audit_log WHERE method = 'RotateKeys' AND user_id = 'ops-1' AND outcome = 'rotated'`); n < 4 {
		t.Errorf("%d audited rotation steps, want one per step", n)
	}
	// Run again: nothing left to do.
	again, err := rot.RotateKeys(ctx, &keysv1.RotateKeysRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for !again.GetDone() {
		if again.GetResealed() != 0 || again.GetRehashed() != 0 {
			t.Fatalf("a second rotation changed values: %v", again)
		}
		if again, err = rot.RotateKeys(ctx, &keysv1.RotateKeysRequest{PageToken: again.GetNextPageToken()}); err != nil {
			t.Fatal(err)
		}
	}

	// The old keys removed: everything opens, duplicates are refused, new
	// students are accepted.
	newOnly := e.replica(t, seal2, hash2)
	for i, a := range apps {
		got, err := newOnly.client("officer-"+a.GetSchoolCode(), auth.RoleSchoolOfficer, a.GetSchoolCode()).GetApplication(ctx, &applicationv1.GetApplicationRequest{ApplicationId: a.GetApplicationId()})
		if err != nil {
			t.Fatalf("read %d under the new keys only: %v", i, err)
		}
		if got.GetStudentIdNumber() != students[i].ID || got.GetStudentName() != students[i].Name {
			t.Errorf("application %d reads as %q %q, want %q %q", i, got.GetStudentIdNumber(), got.GetStudentName(), students[i].ID, students[i].Name)
		}
	}
	for _, s := range students {
		_, err := newOnly.officer("S003").SubmitApplications(ctx, &applicationv1.SubmitApplicationsRequest{SchoolCode: "S003", Term: term,
			Applications: []*applicationv1.NewApplication{boarding(s)}})
		wantCode(t, err, codes.AlreadyExists)
	}
	submit(t, newOnly.officer("S003"), "S003", boarding(newStudent()))
}

// TestRotateKeysRefusesBadRequestsAndOthers checks the RPC's validation and
// that only ops may call it.
func TestRotateKeysRefusesBadRequestsAndOthers(t *testing.T) {
	t.Parallel()
	e := start(t)
	ctx := context.Background()
	for _, req := range []*keysv1.RotateKeysRequest{{BatchSize: -1}, {BatchSize: 5001}, {PageToken: "x"}, {PageToken: "9:"}, {PageToken: "0:not-a-uuid"}} {
		_, err := e.rotator(t).RotateKeys(ctx, req)
		wantCode(t, err, codes.InvalidArgument)
	}
	conn, err := grpcx.Dial(e.run.GRPCAddr, e.keys.Token(t, "auditor-1", auth.RoleAuditor, auth.OrgBureau))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, err = keysv1.NewKeyRotationServiceClient(conn).RotateKeys(ctx, &keysv1.RotateKeysRequest{})
	wantCode(t, err, codes.PermissionDenied)
}

// TestCopiedCiphertextDoesNotOpen copies one application's sealed values
// into another's row, as a database superuser could: the copies do not
// open, the reader is told why, and the values stay sealed.
func TestCopiedCiphertextDoesNotOpen(t *testing.T) {
	t.Parallel()
	e := start(t)
	ctx := context.Background()
	victim, other := newStudent(), newStudent()
	a := submit(t, e.officer("S001"), "S001", boarding(victim))[0]
	b := submit(t, e.officer("S001"), "S001", boarding(other))[0]
	// Another row.
	if _, err := e.pool.Exec(ctx, `UPDATE applications SET student_id_sealed = (SELECT student_id_sealed FROM applications WHERE id = $1) WHERE id = $2`,
		a.GetApplicationId(), b.GetApplicationId()); err != nil {
		t.Fatal(err)
	}
	got, err := e.officer("S001").GetApplication(ctx, &applicationv1.GetApplicationRequest{ApplicationId: b.GetApplicationId()})
	st := wantCode(t, err, codes.FailedPrecondition)
	if !strings.Contains(st.Message(), "copied from another record") || strings.Contains(st.Message(), victim.ID) || got != nil {
		t.Errorf("read of the copied row: %v %q", got, st.Message())
	}
	// Another column of the same row: the name sealed where the ID was.
	if _, err := e.pool.Exec(ctx, `UPDATE applications SET student_name_sealed = student_id_sealed WHERE id = $1`, a.GetApplicationId()); err != nil {
		t.Fatal(err)
	}
	_, err = e.officer("S001").GetApplication(ctx, &applicationv1.GetApplicationRequest{ApplicationId: a.GetApplicationId()})
	wantCode(t, err, codes.FailedPrecondition)
}
