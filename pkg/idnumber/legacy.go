package idnumber

import "fmt"

// LegacyLength is the length of the first-generation identity number (GB
// 11643-1989): 6-digit region, 6-digit birth date (YYMMDD, 19YY), 3-digit
// sequence, no check character.
const LegacyLength = 15

// Upgrade returns the 18-character number of a 15-digit one: the century
// 19 is inserted before the birth date and the check character appended,
// as the public security organs did when the numbers were extended. The
// result is validated as Parse validates. Errors never contain the number.
func Upgrade(s string) (ID, error) {
	if len(s) != LegacyLength {
		return ID{}, fmt.Errorf("%w: got %d characters, want %d", ErrLength, len(s), LegacyLength)
	}
	if !allDigits(s) {
		return ID{}, fmt.Errorf("%w: a 15-digit number has digits only", ErrFormat)
	}
	first17 := s[:6] + "19" + s[6:]
	return Parse(first17 + string(CheckChar(first17)))
}

// ParseAny is Parse for 18-character numbers and Upgrade for 15-digit ones.
func ParseAny(s string) (ID, error) {
	if len(s) == LegacyLength {
		return Upgrade(s)
	}
	return Parse(s)
}
