package app

import (
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/edubureau/studentaid/internal/devtools/testenv"
	"github.com/edubureau/studentaid/pkg/apperr"
	"github.com/edubureau/studentaid/pkg/catalog"
	"github.com/edubureau/studentaid/pkg/idnumber"
	"github.com/edubureau/studentaid/pkg/pii"
	"github.com/edubureau/studentaid/pkg/policy"
	"github.com/edubureau/studentaid/pkg/policy/seed"
)

// withSeedPolicy gives s the seed policy, as SeedPolicy would on an empty
// store, and returns it.
func withSeedPolicy(tb testing.TB, s *Service) *policy.Book {
	tb.Helper()
	b, err := seed.Book()
	if err != nil {
		tb.Fatal(err)
	}
	s.policy.book.Store(b)
	return b
}

// FuzzSubmitValidation feeds arbitrary fields to the submission validator:
// it never panics, refuses with InvalidArgument and field violations, never
// echoes a full ID or card number, and whatever it accepts is a valid ID
// number, a catalog program the student is eligible for, and a Luhn-valid card.
func FuzzSubmitValidation(f *testing.F) {
	good := idnumber.Generate("420102", time.Date(2012, 3, 15, 0, 0, 0, 0, time.UTC), 7)
	card := pii.GenerateCardNumber("621700", 42, 19)
	f.Add("S001", "2017-autumn", good, "王小明", "preschool", "PRESCHOOL_AID", false, false, false, card, "王大明", "key-00001")
	f.Add("S001", "2017-winter", good[:17]+"0", "", "primary", "BOARDING_SUBSIDY", true, false, true, "6217000010000000001", "\xff", "k")
	f.Add("", "", "", "", "", "", false, false, false, "", "", "")
	s := &Service{hasher: testenv.Hasher(f, "")}
	book := withSeedPolicy(f, s)
	f.Fuzz(func(t *testing.T, school, term, id, name, stage, program string, boarding, rural, poor bool, cardNo, account, idem string) {
		req := SubmitRequest{SchoolCode: school, Term: term, IdempotencyKey: idem, Applications: []NewApplication{{
			StudentIDNumber: id, StudentName: name, Stage: stage, ProgramCode: program,
			Boarding: boarding, Rural: rural, RegisteredPoor: poor, BankCardNumber: cardNo, AccountName: account,
		}}}
		ps, _, err := s.prepare(req)
		if err != nil {
			var ae *apperr.Error
			if !errors.As(err, &ae) || ae.Code != apperr.Invalid || len(ae.Violations) == 0 {
				t.Fatalf("refusal is not InvalidArgument with violations: %#v", err)
			}
			for _, fv := range ae.Violations {
				if (len(id) >= 8 && strings.Contains(fv.Description, id)) || (len(cardNo) >= 8 && strings.Contains(fv.Description, cardNo)) {
					t.Fatalf("violation echoes personal data: %q", fv.Description)
				}
				if !utf8.ValidString(fv.Description) {
					t.Fatalf("violation is not valid UTF-8: %q", fv.Description)
				}
			}
			return
		}
		if len(ps) != 1 {
			t.Fatalf("accepted %d applications from 1", len(ps))
		}
		if _, err := idnumber.Parse(ps[0].id.String()); err != nil {
			t.Fatalf("accepted a bad ID number: %v", err)
		}
		if err := pii.ValidateCardNumber(ps[0].card); err != nil {
			t.Fatalf("accepted a bad card: %v", err)
		}
		pv, ok := book.Policy(term)
		if !ok {
			t.Fatalf("accepted term %q without a policy in force", term)
		}
		p, ok := pv.Policy.Program(program)
		if !ok {
			t.Fatalf("accepted unknown program %q", program)
		}
		st, err := catalog.ParseStage(stage)
		if err != nil {
			t.Fatalf("accepted unknown stage %q", stage)
		}
		rv, _ := book.Register(term)
		sc, ok := rv.Register.School(school)
		if !ok {
			t.Fatalf("accepted unknown school %q", school)
		}
		tm, _ := catalog.ParseTerm(term)
		if _, refusals := pv.Policy.Check(p, sc, tm, policy.Applicant{Stage: st, Boarding: boarding, Rural: rural, RegisteredPoor: poor, BirthDate: ps[0].id.BirthDate()}); len(refusals) > 0 {
			t.Fatalf("accepted an ineligible application: %v", refusals)
		}
		if _, err := catalog.ParseTerm(term); err != nil {
			t.Fatalf("accepted term %q", term)
		}
	})
}
