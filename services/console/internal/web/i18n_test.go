package web

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/edubureau/studentaid/pkg/catalog"
)

// keyUse finds the words a template or handler asks for by a literal key.
var keyUse = regexp.MustCompile(`(?:\.T|q\.t|translate\(lang,|translate\(q\.lang,)\s*"([a-z_]+\.[A-Za-z0-9_.]+)"`)

// TestEveryWordIsTranslated fails when a page or a handler names a key the
// dictionary lacks, or a word is missing in one language.
func TestEveryWordIsTranslated(t *testing.T) {
	var sources []string
	err := fs.WalkDir(templateFiles, "templates", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(templateFiles, p)
		sources = append(sources, string(b))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	gos, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range gos {
		if strings.HasSuffix(g, "_test.go") {
			continue
		}
		b, err := os.ReadFile(g)
		if err != nil {
			t.Fatal(err)
		}
		sources = append(sources, string(b))
	}
	used := 0
	for _, src := range sources {
		for _, m := range keyUse.FindAllStringSubmatch(src, -1) {
			used++
			if _, ok := messages[m[1]]; !ok {
				t.Errorf("key %q is used but not in the dictionary", m[1])
			}
		}
	}
	if used < 100 {
		t.Fatalf("found only %d uses of the dictionary: the pattern is wrong", used)
	}
	for k, v := range messages {
		if strings.TrimSpace(v[0]) == "" || strings.TrimSpace(v[1]) == "" {
			t.Errorf("%s: a word is missing in one language: %q", k, v)
		}
	}
	// Keys built at run time from a prefix: every value they can take.
	for _, s := range statusNames {
		if _, ok := messages["status."+s]; !ok {
			t.Errorf("no word for status %s", s)
		}
	}
	for _, list := range [][]string{schoolStates, bureauStates, batchStates, clueStates} {
		for _, s := range list {
			if _, ok := messages["state."+s]; !ok {
				t.Errorf("no word for state %s", s)
			}
		}
	}
	for _, k := range referenceKinds {
		if _, ok := messages["kind."+k]; !ok {
			t.Errorf("no word for reference kind %s", k)
		}
	}
	for _, f := range catalog.FlagKinds() {
		if _, ok := messages["flag."+string(f)]; !ok {
			t.Errorf("no word for flag %s", f)
		}
	}
	for _, l := range levels {
		if _, ok := messages["level."+l]; !ok {
			t.Errorf("no word for level %s", l)
		}
	}
}
