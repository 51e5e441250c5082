package idnumber_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/edubureau/studentaid/pkg/idnumber"
)

// withCheck appends the correct check character to 17 digits.
func withCheck(t *testing.T, first17 string) string {
	t.Helper()
	return first17 + string(idnumber.CheckChar(first17))
}

// withWrongCheck appends a check character that does not match.
func withWrongCheck(t *testing.T, first17 string) string {
	t.Helper()
	if idnumber.CheckChar(first17) == '0' {
		return first17 + "1"
	}
	return first17 + "0"
}

func TestParse(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name    string
		in      string
		want    string // normalised number when err is nil
		wantErr error
	}{
		{name: "GB 11643 example", in: "11010519491231002X", want: "11010519491231002X"},
		{name: "lowercase x normalised", in: "11010519491231002x", want: "11010519491231002X"},
		{name: "digit check character", in: withCheck(t, "42010120050301123"), want: withCheck(t, "42010120050301123")},
		{name: "leap day", in: withCheck(t, "42010120080229001"), want: withCheck(t, "42010120080229001")},
		{name: "year 1900 accepted", in: withCheck(t, "42010119000101001"), want: withCheck(t, "42010119000101001")},
		{name: "Hong Kong region", in: withCheck(t, "81000020010101001"), want: withCheck(t, "81000020010101001")},
		{name: "Taiwan residence permit", in: withCheck(t, "83000020010101001"), want: withCheck(t, "83000020010101001")},

		{name: "empty", in: "", wantErr: idnumber.ErrLength},
		{name: "15-digit old format", in: "110105491231002", wantErr: idnumber.ErrLength},
		{name: "17 characters", in: "11010519491231002", wantErr: idnumber.ErrLength},
		{name: "19 characters", in: "11010519491231002X0", wantErr: idnumber.ErrLength},
		{name: "surrounding space", in: " 11010519491231002X", wantErr: idnumber.ErrLength},
		{name: "full-width digits", in: "１１０１０５１９４９１２３１００２Ｘ", wantErr: idnumber.ErrFormat},
		{name: "letter in body", in: "1101051949123100AX", wantErr: idnumber.ErrFormat},
		{name: "X not last", in: "X10105194912310020", wantErr: idnumber.ErrFormat},
		{name: "bad check character", in: "11010519491231002Y", wantErr: idnumber.ErrFormat},
		{name: "dash", in: "110105-1949123100X", wantErr: idnumber.ErrFormat},
		{name: "province 00", in: withCheck(t, "00010520010101001"), wantErr: idnumber.ErrRegion},
		{name: "province 16", in: withCheck(t, "16010520010101001"), wantErr: idnumber.ErrRegion},
		{name: "province 99", in: withCheck(t, "99010520010101001"), wantErr: idnumber.ErrRegion},
		{name: "province 84", in: withCheck(t, "84010520010101001"), wantErr: idnumber.ErrRegion},
		{name: "year 1899", in: withCheck(t, "42010118991231001"), wantErr: idnumber.ErrBirthDate},
		{name: "month 00", in: withCheck(t, "42010120010001001"), wantErr: idnumber.ErrBirthDate},
		{name: "month 13", in: withCheck(t, "42010120011301001"), wantErr: idnumber.ErrBirthDate},
		{name: "day 00", in: withCheck(t, "42010120010100001"), wantErr: idnumber.ErrBirthDate},
		{name: "31 April", in: withCheck(t, "42010120010431001"), wantErr: idnumber.ErrBirthDate},
		{name: "29 February common year", in: withCheck(t, "42010120010229001"), wantErr: idnumber.ErrBirthDate},
		{name: "29 February 1900 not leap", in: withCheck(t, "42010119000229001"), wantErr: idnumber.ErrBirthDate},
		{name: "wrong check digit", in: withWrongCheck(t, "42010120050301123"), wantErr: idnumber.ErrChecksum},
		{name: "transposed digits", in: "11010519491213002X", wantErr: idnumber.ErrChecksum},
		{name: "X where digit expected", in: withCheck(t, "42010120050301123")[:17] + "X", wantErr: idnumber.ErrChecksum},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := idnumber.Parse(tt.in)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Parse() error = %v, want %v", err, tt.wantErr)
				}
				if got != (idnumber.ID{}) {
					t.Errorf("Parse() returned non-zero ID %q with error", got.Masked())
				}
				if len(tt.in) >= 10 && strings.Contains(err.Error(), tt.in) {
					t.Errorf("error message %q leaks the number", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse() error = %v", err)
			}
			if got.String() != tt.want {
				t.Errorf("String() = %q, want %q", got.String(), tt.want)
			}
		})
	}
}

func TestParseErrorsDoNotLeakNumber(t *testing.T) {
	t.Parallel()

	valid := "11010519491231002X"
	tests := []struct {
		name string
		in   string
	}{
		{name: "checksum", in: "11010519491231002" + "1"},
		{name: "birth date", in: withCheck(t, "11010519491331002")},
		{name: "region", in: withCheck(t, "99010519491231002")},
		{name: "format", in: "1101051949123100ZX"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := idnumber.Parse(tt.in)
			if err == nil {
				t.Fatal("Parse() succeeded, want error")
			}
			msg := err.Error()
			for _, leak := range []string{tt.in, tt.in[:17], tt.in[6:14], valid[6:14]} {
				if strings.Contains(msg, leak) {
					t.Errorf("error %q contains %q", msg, leak)
				}
			}
		})
	}
}

func TestIDAccessors(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name       string
		in         string
		wantMasked string
		wantRegion string
		wantBirth  time.Time
	}{
		{
			name:       "GB 11643 example",
			in:         "11010519491231002x",
			wantMasked: "1101**********002X",
			wantRegion: "110105",
			wantBirth:  time.Date(1949, 12, 31, 0, 0, 0, 0, time.UTC),
		},
		{
			name:       "student in Wuhan",
			in:         idnumber.Generate("420102", time.Date(2005, 3, 1, 0, 0, 0, 0, time.UTC), 123),
			wantMasked: "4201**********123" + string(idnumber.CheckChar("42010220050301123")),
			wantRegion: "420102",
			wantBirth:  time.Date(2005, 3, 1, 0, 0, 0, 0, time.UTC),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			id, err := idnumber.Parse(tt.in)
			if err != nil {
				t.Fatalf("Parse() error = %v", err)
			}
			if got := id.Masked(); got != tt.wantMasked {
				t.Errorf("Masked() = %q, want %q", got, tt.wantMasked)
			}
			if got := id.Region(); got != tt.wantRegion {
				t.Errorf("Region() = %q, want %q", got, tt.wantRegion)
			}
			got := id.BirthDate()
			if !got.Equal(tt.wantBirth) || got.Location() != time.UTC {
				t.Errorf("BirthDate() = %v, want %v", got, tt.wantBirth)
			}
		})
	}
}

func TestZeroID(t *testing.T) {
	t.Parallel()

	var id idnumber.ID
	if id.String() != "" || id.Region() != "" || !id.BirthDate().IsZero() || id.AgeOn(time.Now()) != 0 {
		t.Errorf("zero ID accessors not empty: %q %q %v", id.String(), id.Region(), id.BirthDate())
	}
	if got := id.Masked(); got != "****" {
		t.Errorf("Masked() = %q, want ****", got)
	}
}

func TestAgeOn(t *testing.T) {
	t.Parallel()

	shanghai := time.FixedZone("CST", 8*60*60)
	date := func(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 12, 0, 0, 0, time.UTC) }
	tests := []struct {
		name  string
		birth time.Time
		on    time.Time
		want  int
	}{
		{name: "day before birthday", birth: date(2005, 9, 1), on: date(2017, 8, 31), want: 11},
		{name: "on birthday", birth: date(2005, 9, 1), on: date(2017, 9, 1), want: 12},
		{name: "day after birthday", birth: date(2005, 9, 1), on: date(2017, 9, 2), want: 12},
		{name: "earlier month", birth: date(2005, 9, 1), on: date(2017, 3, 15), want: 11},
		{name: "later month", birth: date(2005, 9, 1), on: date(2017, 10, 1), want: 12},
		{name: "newborn", birth: date(2017, 9, 1), on: date(2017, 9, 1), want: 0},
		{name: "before birth", birth: date(2017, 9, 1), on: date(2010, 1, 1), want: 0},
		{name: "leap day, common year 28 Feb", birth: date(2004, 2, 29), on: date(2017, 2, 28), want: 12},
		{name: "leap day, common year 1 Mar", birth: date(2004, 2, 29), on: date(2017, 3, 1), want: 13},
		{name: "leap day, leap year", birth: date(2004, 2, 29), on: date(2016, 2, 29), want: 12},
		{
			name:  "uses t's local date",
			birth: date(2005, 9, 1),
			on:    time.Date(2017, 9, 1, 0, 30, 0, 0, shanghai), // still 31 August in UTC
			want:  12,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			id, err := idnumber.Parse(idnumber.Generate("420102", tt.birth, 7))
			if err != nil {
				t.Fatalf("Parse() error = %v", err)
			}
			if got := id.AgeOn(tt.on); got != tt.want {
				t.Errorf("AgeOn(%v) = %d, want %d", tt.on, got, tt.want)
			}
		})
	}
}

func TestCheckChar(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name    string
		first17 string
		want    byte
	}{
		{name: "X", first17: "11010519491231002", want: 'X'},
		{name: "all zeros", first17: "00000000000000000", want: '1'},
		{name: "first weight only", first17: "10000000000000000", want: '5'}, // sum 7
		{name: "last weight only", first17: "00000000000000001", want: 'X'},  // sum 2
		{name: "all nines", first17: "99999999999999999", want: '3'},         // sum 900, mod 11 = 9
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := idnumber.CheckChar(tt.first17); got != tt.want {
				t.Errorf("CheckChar(%q) = %q, want %q", tt.first17, got, tt.want)
			}
		})
	}
}

func TestCheckCharPanics(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name string
		in   string
	}{
		{name: "short", in: "1234"},
		{name: "long", in: "110105194912310020"},
		{name: "non-digit", in: "1101051949123100A"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			defer func() {
				if recover() == nil {
					t.Errorf("CheckChar(%q) did not panic", tt.in)
				}
			}()
			idnumber.CheckChar(tt.in)
		})
	}
}

func TestGenerate(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name   string
		region string
		birth  time.Time
		seq    int
		want   string
	}{
		{name: "GB 11643 example", region: "110105", birth: time.Date(1949, 12, 31, 0, 0, 0, 0, time.UTC), seq: 2, want: "11010519491231002X"},
		{name: "sequence 0", region: "420102", birth: time.Date(2010, 1, 2, 0, 0, 0, 0, time.UTC), seq: 0, want: withCheck(t, "42010220100102000")},
		{name: "sequence 999", region: "650102", birth: time.Date(2010, 1, 2, 0, 0, 0, 0, time.UTC), seq: 999, want: withCheck(t, "65010220100102999")},
		{
			name:   "calendar date in birth's location",
			region: "420102",
			birth:  time.Date(2010, 1, 2, 23, 30, 0, 0, time.FixedZone("CST", 8*60*60)),
			seq:    5,
			want:   withCheck(t, "42010220100102005"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := idnumber.Generate(tt.region, tt.birth, tt.seq)
			if got != tt.want {
				t.Errorf("Generate() = %q, want %q", got, tt.want)
			}
			if _, err := idnumber.Parse(got); err != nil {
				t.Errorf("Parse(Generate()) error = %v", err)
			}
		})
	}
}

func TestGeneratePanics(t *testing.T) {
	t.Parallel()

	ok := time.Date(2010, 1, 2, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		region string
		birth  time.Time
		seq    int
	}{
		{name: "short region", region: "4201", birth: ok, seq: 1},
		{name: "non-digit region", region: "42010A", birth: ok, seq: 1},
		{name: "unknown province", region: "990102", birth: ok, seq: 1},
		{name: "birth before 1900", region: "420102", birth: time.Date(1899, 12, 31, 0, 0, 0, 0, time.UTC), seq: 1},
		{name: "negative sequence", region: "420102", birth: ok, seq: -1},
		{name: "sequence 1000", region: "420102", birth: ok, seq: 1000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			defer func() {
				if recover() == nil {
					t.Errorf("Generate(%q, %v, %d) did not panic", tt.region, tt.birth, tt.seq)
				}
			}()
			idnumber.Generate(tt.region, tt.birth, tt.seq)
		})
	}
}

func TestMask(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name string
		in   string
		want string
	}{
		{name: "empty", in: "", want: "****"},
		{name: "7 characters", in: "1234567", want: "****"},
		{name: "8 characters", in: "12345678", want: "1234**********5678"},
		{name: "identity number", in: "42010220050301123X", want: "4201**********123X"},
		{name: "16-digit card", in: "6222021234567890", want: "6222**********7890"},
		{name: "19-digit card", in: "6228480402564890018", want: "6228**********0018"},
		{name: "multi-byte runes kept whole", in: "湖北省武汉市江岸区", want: "湖北省武**********市江岸区"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := idnumber.Mask(tt.in); got != tt.want {
				t.Errorf("Mask(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}
