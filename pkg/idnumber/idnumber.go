// Package idnumber parses and validates the 18-character PRC Resident
// Identity Card number (居民身份证号码, GB 11643-1999): a 6-digit region code,
// an 8-digit birth date, a 3-digit sequence and an ISO 7064 MOD 11-2 check
// character.
//
// An identity number is personal data. Nothing in this package puts a full
// number into an error message; use [ID.Masked] or [Mask] for logs and
// screens.
package idnumber

import (
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
)

// Length is the number of characters in an identity number.
const Length = 18

// Errors returned (wrapped, with detail) by [Parse]. Compare with errors.Is.
var (
	// ErrLength means the input is not 18 characters long.
	ErrLength = errors.New("identity number has the wrong length")
	// ErrFormat means a character is not a digit (or, last, X).
	ErrFormat = errors.New("identity number has an invalid character")
	// ErrRegion means the first two digits are not a province code.
	ErrRegion = errors.New("identity number has an unknown region code")
	// ErrBirthDate means digits 7-14 are not a real date in or after 1900.
	ErrBirthDate = errors.New("identity number has an invalid birth date")
	// ErrChecksum means the last character does not match the first 17.
	ErrChecksum = errors.New("identity number check character does not match")
)

// provinces holds the valid first two digits of a region code: the
// provincial-level divisions, plus 71 (Taiwan), 81 (Hong Kong), 82 (Macao)
// and 83 (residence permits for Taiwan residents).
var provinces = map[string]bool{
	"11": true, "12": true, "13": true, "14": true, "15": true,
	"21": true, "22": true, "23": true,
	"31": true, "32": true, "33": true, "34": true, "35": true, "36": true, "37": true,
	"41": true, "42": true, "43": true, "44": true, "45": true, "46": true,
	"50": true, "51": true, "52": true, "53": true, "54": true,
	"61": true, "62": true, "63": true, "64": true, "65": true,
	"71": true,
	"81": true, "82": true, "83": true,
}

// weights are 2^(17-i) mod 11 for positions i = 0..16 (ISO 7064 MOD 11-2).
var weights = [17]int{7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}

// checkChars maps the weighted sum mod 11 to the check character.
const checkChars = "10X98765432"

// minBirthYear rejects birth years that cannot belong to a living student or
// guardian and are most likely typing errors.
const minBirthYear = 1900

// ID is a validated identity number. The zero value is not a valid number;
// obtain IDs from [Parse]. IDs are comparable with ==.
type ID struct {
	number string // 18 characters, check character normalised to upper case
}

// Parse validates s and returns it as an ID. The check character may be x or
// X; it is normalised to X. Parse does not trim spaces. Errors wrap one of
// [ErrLength], [ErrFormat], [ErrRegion], [ErrBirthDate] or [ErrChecksum] and
// never contain the number itself.
func Parse(s string) (ID, error) {
	if len(s) != Length {
		if n := utf8.RuneCountInString(s); n == Length {
			// Chinese input methods easily produce full-width digits.
			return ID{}, fmt.Errorf("%w: contains non-ASCII characters (full-width digits?)", ErrFormat)
		}
		return ID{}, fmt.Errorf("%w: got %d characters, want %d", ErrLength, utf8.RuneCountInString(s), Length)
	}
	for i := range Length - 1 {
		if !isDigit(s[i]) {
			return ID{}, fmt.Errorf("%w: character %d is not a digit", ErrFormat, i+1)
		}
	}
	last := s[Length-1]
	if last == 'x' {
		last = 'X'
	}
	if !isDigit(last) && last != 'X' {
		return ID{}, fmt.Errorf("%w: check character (18th) must be a digit or X", ErrFormat)
	}
	if !provinces[s[:2]] {
		return ID{}, fmt.Errorf("%w: %s is not a province code", ErrRegion, s[:2])
	}
	if _, err := parseBirthDate(s[6:14]); err != nil {
		return ID{}, err
	}
	if want := CheckChar(s[:Length-1]); last != want {
		return ID{}, fmt.Errorf("%w: a digit is probably mistyped", ErrChecksum)
	}
	return ID{number: s[:Length-1] + string(last)}, nil
}

// parseBirthDate parses 8 digits as YYYYMMDD; the error does not echo the
// date, since with the region code it narrows down the person.
func parseBirthDate(yyyymmdd string) (time.Time, error) {
	year := atoi(yyyymmdd[0:4])
	month := atoi(yyyymmdd[4:6])
	day := atoi(yyyymmdd[6:8])
	if year < minBirthYear {
		return time.Time{}, fmt.Errorf("%w: year %d is before %d", ErrBirthDate, year, minBirthYear)
	}
	if month < 1 || month > 12 {
		return time.Time{}, fmt.Errorf("%w: month %d does not exist", ErrBirthDate, month)
	}
	t := time.Date(year, time.Month(month), day, 0, 0, 0, 0, time.UTC)
	if day < 1 || t.Day() != day {
		return time.Time{}, fmt.Errorf("%w: day %d does not exist in that month", ErrBirthDate, day)
	}
	return t, nil
}

// String returns the full, normalised number. Do not log it; use [ID.Masked].
func (id ID) String() string { return id.number }

// Masked returns the number with all but the first and last four characters
// hidden, e.g. 4201**********123X.
func (id ID) Masked() string { return Mask(id.number) }

// Region returns the 6-digit administrative region code of the place of
// first registration.
func (id ID) Region() string {
	if id.number == "" {
		return ""
	}
	return id.number[:6]
}

// BirthDate returns the birth date at midnight UTC. It returns the zero time
// for the zero ID.
func (id ID) BirthDate() time.Time {
	if id.number == "" {
		return time.Time{}
	}
	t, err := parseBirthDate(id.number[6:14])
	if err != nil {
		panic("idnumber: ID holds an unvalidated number") // unreachable: IDs come from Parse
	}
	return t
}

// AgeOn returns the age in completed years (周岁) on t's calendar date in t's
// location, or 0 if t is before the birth date. Someone born on 29 February
// completes a year on 1 March in common years.
func (id ID) AgeOn(t time.Time) int {
	birth := id.BirthDate()
	if birth.IsZero() {
		return 0
	}
	y, m, d := t.Date()
	age := y - birth.Year()
	if m < birth.Month() || (m == birth.Month() && d < birth.Day()) {
		age--
	}
	return max(age, 0)
}

// CheckChar returns the ISO 7064 MOD 11-2 check character ('0'-'9' or 'X')
// for the first 17 digits of a number. It panics if first17 is not exactly 17
// ASCII digits.
func CheckChar(first17 string) byte {
	if len(first17) != Length-1 {
		panic(fmt.Sprintf("idnumber.CheckChar: got %d characters, want %d", len(first17), Length-1))
	}
	sum := 0
	for i := range Length - 1 {
		c := first17[i]
		if !isDigit(c) {
			panic(fmt.Sprintf("idnumber.CheckChar: character %d is not a digit", i+1))
		}
		sum += int(c-'0') * weights[i]
	}
	return checkChars[sum%11]
}

// Generate builds a valid number from a 6-digit region code, the calendar
// date of birth (in birth's location) and a sequence 0-999. It is meant for
// test data and load generation, so it panics on any input [Parse] would
// reject rather than return an error.
func Generate(region string, birth time.Time, seq int) string {
	if len(region) != 6 || !allDigits(region) {
		panic("idnumber.Generate: region must be 6 digits")
	}
	if !provinces[region[:2]] {
		panic("idnumber.Generate: unknown province code " + region[:2])
	}
	if y := birth.Year(); y < minBirthYear || y > 9999 {
		panic(fmt.Sprintf("idnumber.Generate: birth year %d outside %d..9999", y, minBirthYear))
	}
	if seq < 0 || seq > 999 {
		panic(fmt.Sprintf("idnumber.Generate: sequence %d outside 0..999", seq))
	}
	first17 := fmt.Sprintf("%s%s%03d", region, birth.Format("20060102"), seq)
	return first17 + string(CheckChar(first17))
}

// Mask hides the middle of s behind ten asterisks, keeping the first and last
// four characters (runes), e.g. 4201**********123X or 6222**********0123.
// The fixed run of asterisks hides the length too. Strings shorter than 8
// characters become "****".
func Mask(s string) string {
	r := []rune(s)
	if len(r) < 8 {
		return "****"
	}
	return string(r[:4]) + "**********" + string(r[len(r)-4:])
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func allDigits(s string) bool {
	for i := range len(s) {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

// atoi converts a string already checked to be ASCII digits.
func atoi(s string) int {
	n := 0
	for i := range len(s) {
		n = n*10 + int(s[i]-'0')
	}
	return n
}
