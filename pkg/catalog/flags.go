package catalog

import "slices"

// FlagKind is a kind of review-time flag: what the data office's reference
// data says about an application when a bureau reviewer opens it
// (data-comparison ListFlags). Flags inform; the reviewer decides, and the
// decision records the kinds it was shown (bureau-review Decide). The
// values are stable: they are stored with decisions and carried in events.
type FlagKind string

// Kinds of review-time flag.
const (
	// FlagNotInRegistry: the program is for registered poor households
	// (建档立卡) and the student is not in the poverty registry.
	FlagNotInRegistry FlagKind = "not_in_registry"
	// FlagOtherSchoolSameTerm: another school applied for or paid the
	// student in the same term.
	FlagOtherSchoolSameTerm FlagKind = "other_school_same_term"
	// FlagKeyPersonRelative: the student is on the key-persons list (重点对象).
	FlagKeyPersonRelative FlagKind = "key_person_relative"
	// FlagNotOnRoster: the school's enrolment roster for the term does not
	// list the student.
	FlagNotOnRoster FlagKind = "not_on_roster"
	// FlagDeceased: the student is recorded as dead or deregistered.
	FlagDeceased FlagKind = "deceased"
	// FlagAboveStandard: the amount exceeds the program's standard.
	FlagAboveStandard FlagKind = "above_standard"
	// FlagAgeStageMismatch: the student's age does not fit the stage.
	FlagAgeStageMismatch FlagKind = "age_stage_mismatch"
)

// FlagKinds lists every flag kind in the order flags are shown.
func FlagKinds() []FlagKind {
	return []FlagKind{FlagNotInRegistry, FlagOtherSchoolSameTerm, FlagKeyPersonRelative, FlagNotOnRoster,
		FlagDeceased, FlagAboveStandard, FlagAgeStageMismatch}
}

// ParseFlagKind returns the flag kind named s, or false.
func ParseFlagKind(s string) (FlagKind, bool) {
	k := FlagKind(s)
	return k, slices.Contains(FlagKinds(), k)
}
