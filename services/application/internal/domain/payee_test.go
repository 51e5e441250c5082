package domain

import (
	"errors"
	"testing"

	"github.com/edubureau/studentaid/pkg/auth"
)

func TestCheckPayeeApprover(t *testing.T) {
	t.Parallel()
	c := PayeeCorrection{EnteredBy: auth.Identity{UserID: "u1", Role: auth.RoleSchoolOfficer, Org: "S001"}}
	tests := []struct {
		name     string
		approver auth.Identity
		want     error
	}{
		{"another reviewer of the school", auth.Identity{UserID: "u2", Role: auth.RoleSchoolReviewer, Org: "S001"}, nil},
		{"the officer who entered it, as a reviewer", auth.Identity{UserID: "u1", Role: auth.RoleSchoolReviewer, Org: "S001"}, ErrPayeeSelfApproval},
		{"a reviewer of another school", auth.Identity{UserID: "u2", Role: auth.RoleSchoolReviewer, Org: "S002"}, ErrPayeeApproverOtherSchool},
		{"the same user ID at another school", auth.Identity{UserID: "u1", Role: auth.RoleSchoolReviewer, Org: "S002"}, ErrPayeeApproverOtherSchool},
		{"another officer", auth.Identity{UserID: "u2", Role: auth.RoleSchoolOfficer, Org: "S001"}, ErrPayeeApproverRole},
		{"a bureau reviewer", auth.Identity{UserID: "u2", Role: auth.RoleBureauReviewer, Org: auth.OrgBureau}, ErrPayeeApproverRole},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if err := CheckPayeeApprover(c, "S001", tt.approver); !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}
