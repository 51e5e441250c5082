package app

import (
	"testing"
	"time"

	"github.com/edubureau/studentaid/internal/devtools/testenv"
	"github.com/edubureau/studentaid/pkg/idnumber"
	"github.com/edubureau/studentaid/pkg/pii"
)

// BenchmarkSubmitValidation validates a full submission of 1000
// applications: ID numbers, names, stages, programs, eligibility, cards and
// in-request duplicates, plus the keyed hash of every ID number.
func BenchmarkSubmitValidation(b *testing.B) {
	s := &Service{hasher: testenv.Hasher(b, "")}
	withSeedPolicy(b, s)
	req := SubmitRequest{SchoolCode: "S001", Term: "2017-autumn", IdempotencyKey: "bench-key-0001"}
	for i := range MaxApplicationsPerRequest {
		req.Applications = append(req.Applications, NewApplication{
			StudentIDNumber: idnumber.Generate("420102", time.Date(2012, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, i/1000), i%1000),
			StudentName:     "王小明", Stage: "preschool", ProgramCode: "PRESCHOOL_AID",
			BankCardNumber: pii.GenerateCardNumber("621700", int64(i), 19), AccountName: "王大明",
		})
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, _, err := s.prepare(req); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*MaxApplicationsPerRequest)/b.Elapsed().Seconds(), "applications/s")
}
