package calendar

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"
)

//go:embed data/*.json
var data embed.FS

// MaxBreakDays caps one break of a seed file (the longest so far: 9 days).
const MaxBreakDays = 15

// File is a seed file as written: one year's breaks as the notice lists
// them, each a name, a first and last day, and the working days swapped
// for it.
type File struct {
	Year   int     `json:"year"`
	Source string  `json:"source"`
	Breaks []Break `json:"breaks"`
}

// Break is one holiday break of a notice: every day from From to To is a
// holiday named Name; WorkingDays are the weekend days worked for it.
type Break struct {
	Name        string   `json:"name"`
	From        string   `json:"from"`
	To          string   `json:"to"`
	WorkingDays []string `json:"working_days,omitempty"`
}

// ParseFile reads and validates one seed file.
func ParseFile(b []byte) (Year, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var f File
	if err := dec.Decode(&f); err != nil {
		return Year{}, fmt.Errorf("calendar file: %w", err)
	}
	y := Year{Year: f.Year, Source: f.Source}
	for i, br := range f.Breaks {
		from, err := ParseDate(br.From)
		if err != nil {
			return Year{}, fmt.Errorf("calendar file %d: breaks[%d].from: %w", f.Year, i, err)
		}
		to, err := ParseDate(br.To)
		if err != nil {
			return Year{}, fmt.Errorf("calendar file %d: breaks[%d].to: %w", f.Year, i, err)
		}
		if to.Compare(from) < 0 || to.Compare(from.AddDays(MaxBreakDays-1)) > 0 {
			return Year{}, fmt.Errorf("calendar file %d: breaks[%d] (%s): %s to %s is not a break of 1 to %d days", f.Year, i, br.Name, from, to, MaxBreakDays)
		}
		for d := from; d.Compare(to) <= 0; d = d.AddDays(1) {
			y.Holidays = append(y.Holidays, Day{d, br.Name})
		}
		for j, s := range br.WorkingDays {
			d, err := ParseDate(s)
			if err != nil {
				return Year{}, fmt.Errorf("calendar file %d: breaks[%d].working_days[%d]: %w", f.Year, i, j, err)
			}
			y.WorkingDays = append(y.WorkingDays, Day{d, br.Name})
		}
	}
	if err := y.Validate(); err != nil {
		return Year{}, err
	}
	return y, nil
}

// Seed returns the embedded years (data/<year>.json), in order.
func Seed() ([]Year, error) {
	names, err := fs.Glob(data, "data/*.json")
	if err != nil {
		return nil, err
	}
	out := make([]Year, 0, len(names))
	for _, name := range names {
		b, err := data.ReadFile(name)
		if err != nil {
			return nil, err
		}
		y, err := ParseFile(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if want := strings.TrimSuffix(path.Base(name), ".json"); strconv.Itoa(y.Year) != want {
			return nil, fmt.Errorf("%s: holds the year %d", name, y.Year)
		}
		out = append(out, y)
	}
	return out, nil
}

// Seeded returns the calendar of the embedded years. It panics if they do
// not load, which TestSeed rules out.
func Seeded() *Calendar {
	years, err := Seed()
	if err != nil {
		panic(err)
	}
	c, err := New(years...)
	if err != nil {
		panic(err)
	}
	return c
}
