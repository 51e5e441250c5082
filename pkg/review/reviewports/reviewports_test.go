package reviewports_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/edubureau/studentaid/pkg/apperr"
	"github.com/edubureau/studentaid/pkg/review/reviewports"
)

// decision is a Decide request's decision, as the protobuf messages have it.
type decision struct {
	id, reason, level string
	approve           bool
}

func (d decision) GetApplicationId() string { return d.id }
func (d decision) GetApprove() bool         { return d.approve }
func (d decision) GetReason() string        { return d.reason }

const (
	id1 = "0190a5f2-7c1e-7d3a-9b2e-5f6a7b8c9d0e"
	id2 = "0190a5f2-7c1e-7d3a-9b2e-5f6a7b8c9d0f"
)

// levelChecked is the service's own check: a level must be "" or "ok".
func levelChecked(v *apperr.Violations, field, appID string, d decision) string {
	if d.level != "" && d.level != "ok" {
		v.Addf(field+".level", "bad level %q", d.level)
	}
	return appID
}

func TestDecisions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		req    []decision
		fields []string
	}{
		{"valid", []decision{{id: id1, approve: true}, {id: id2, reason: "学籍信息有误"}}, nil},
		{"none", nil, []string{"decisions"}},
		{"too many", make([]decision, reviewports.MaxDecisions+1), []string{"decisions"}},
		{"bad id", []decision{{id: "42", approve: true}}, []string{"decisions[0].application_id"}},
		{"twice", []decision{{id: id1, approve: true}, {id: id1, approve: true}}, []string{"decisions[1].application_id"}},
		{"rejection without reason", []decision{{id: id1}}, []string{"decisions[0].reason"}},
		{"overlong reason", []decision{{id: id1, approve: true, reason: strings.Repeat("长", 501)}}, []string{"decisions[0].reason"}},
		{"own field, then reason", []decision{{id: id1, level: "x"}}, []string{"decisions[0].level", "decisions[0].reason"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ds, err := reviewports.Decisions(tc.req, levelChecked)
			if tc.fields == nil {
				if err != nil || !slices.Equal(ds, []string{id1, id2}) {
					t.Fatalf("Decisions = %v, %v", ds, err)
				}
				return
			}
			e, ok := errors.AsType[*apperr.Error](err)
			if !ok || e.Code != apperr.Invalid {
				t.Fatalf("Decisions: %v, want InvalidArgument", err)
			}
			var got []string
			for _, v := range e.Violations {
				got = append(got, v.Field)
			}
			if !slices.Equal(got, tc.fields) {
				t.Fatalf("violations %v, want %v", got, tc.fields)
			}
		})
	}
}
