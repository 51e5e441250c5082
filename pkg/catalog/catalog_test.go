package catalog_test

import (
	"errors"
	"testing"

	"github.com/edubureau/studentaid/pkg/catalog"
)

func TestParseStage(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name    string
		in      string
		want    catalog.Stage
		wantErr error
	}{
		{name: "preschool", in: "preschool", want: catalog.StagePreschool},
		{name: "primary", in: "primary", want: catalog.StagePrimary},
		{name: "junior", in: "junior", want: catalog.StageJunior},
		{name: "high school", in: "high_school", want: catalog.StageHighSchool},
		{name: "vocational", in: "vocational", want: catalog.StageVocational},
		{name: "university", in: "university", want: catalog.StageUniversity},
		{name: "empty", in: "", wantErr: catalog.ErrUnknownStage},
		{name: "upper case", in: "PRIMARY", wantErr: catalog.ErrUnknownStage},
		{name: "space", in: "high school", wantErr: catalog.ErrUnknownStage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := catalog.ParseStage(tt.in)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("ParseStage(%q) error = %v, want %v", tt.in, err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("ParseStage(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseLevel(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name    string
		in      string
		want    catalog.HardshipLevel
		wantErr error
	}{
		{name: "unspecified", in: "", want: catalog.LevelUnspecified},
		{name: "especially difficult", in: "especially_difficult", want: catalog.LevelEspeciallyDifficult},
		{name: "difficult", in: "difficult", want: catalog.LevelDifficult},
		{name: "generally difficult", in: "generally_difficult", want: catalog.LevelGenerallyDifficult},
		{name: "unknown", in: "very_difficult", wantErr: catalog.ErrUnknownLevel},
		{name: "upper case", in: "DIFFICULT", wantErr: catalog.ErrUnknownLevel},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := catalog.ParseLevel(tt.in)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("ParseLevel(%q) error = %v, want %v", tt.in, err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("ParseLevel(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseTerm(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name    string
		in      string
		want    catalog.Term
		wantErr bool
	}{
		{name: "spring", in: "2017-spring", want: catalog.Term{Year: 2017, Season: catalog.SeasonSpring}},
		{name: "autumn", in: "2017-autumn", want: catalog.Term{Year: 2017, Season: catalog.SeasonAutumn}},
		{name: "first year", in: "2000-spring", want: catalog.Term{Year: 2000, Season: catalog.SeasonSpring}},
		{name: "last year", in: "2100-autumn", want: catalog.Term{Year: 2100, Season: catalog.SeasonAutumn}},
		{name: "year too early", in: "1999-autumn", wantErr: true},
		{name: "year too late", in: "2101-spring", wantErr: true},
		{name: "fall", in: "2017-fall", wantErr: true},
		{name: "summer", in: "2017-summer", wantErr: true},
		{name: "upper case season", in: "2017-Spring", wantErr: true},
		{name: "two-digit year", in: "17-spring", wantErr: true},
		{name: "signed year", in: "+017-spring", wantErr: true},
		{name: "five-digit year", in: "02017-spring", wantErr: true},
		{name: "no dash", in: "2017spring", wantErr: true},
		{name: "season first", in: "spring-2017", wantErr: true},
		{name: "trailing space", in: "2017-spring ", wantErr: true},
		{name: "Chinese season", in: "2017-秋季", wantErr: true},
		{name: "empty", in: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := catalog.ParseTerm(tt.in)
			if tt.wantErr {
				if !errors.Is(err, catalog.ErrInvalidTerm) {
					t.Fatalf("ParseTerm(%q) error = %v, want ErrInvalidTerm", tt.in, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseTerm(%q) error = %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("ParseTerm(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
			if got.String() != tt.in {
				t.Errorf("String() = %q, want %q", got.String(), tt.in)
			}
		})
	}
}
