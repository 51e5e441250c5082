package domain

import (
	"errors"
	"testing"

	"github.com/edubureau/studentaid/pkg/auth"
)

func TestCheckConfirmer(t *testing.T) {
	t.Parallel()
	items := []Item{
		{ApplicationID: "app-1", Reviewers: Reviewers{SubmittedBy: "off1", SchoolReviewer: "rev1", BureauReviewer: "bur1"}},
		{ApplicationID: "app-2", Reviewers: Reviewers{SubmittedBy: "off2", SchoolReviewer: "rev2", BureauReviewer: "bur2"}},
	}
	tests := []struct {
		officer  string
		role     auth.Role
		want     error
		involved string
	}{
		{"fin1", auth.RoleFinanceOfficer, nil, ""},
		{"off2", auth.RoleFinanceOfficer, ErrReviewedOwnItem, "app-2"},
		{"rev1", auth.RoleFinanceOfficer, ErrReviewedOwnItem, "app-1"},
		{"bur2", auth.RoleFinanceOfficer, ErrReviewedOwnItem, "app-2"},
		{"", auth.RoleFinanceOfficer, nil, ""},
		{"fin1", auth.RoleBureauReviewer, ErrNotConfirmer, ""},
		{"bur1", auth.RoleBureauReviewer, ErrNotConfirmer, ""},
	}
	for _, tt := range tests {
		t.Run(tt.officer+" as "+string(tt.role), func(t *testing.T) {
			t.Parallel()
			err := CheckConfirmer(auth.Identity{UserID: tt.officer, Role: tt.role}, items...)
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Fatalf("err %v, want %v", err, tt.want)
			}
			inv, ok := errors.AsType[*InvolvedError](err)
			if ok != (tt.involved != "") || (ok && inv.ApplicationID != tt.involved) {
				t.Errorf("err %v, want it to name %q", err, tt.involved)
			}
		})
	}
}
