package web

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/edubureau/studentaid/pkg/catalog"
	"github.com/edubureau/studentaid/pkg/policy"
	datacomparisonv1 "github.com/edubureau/studentaid/proto/gen/aid/datacomparison/v1"
	financev1 "github.com/edubureau/studentaid/proto/gen/aid/finance/v1"
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
	// The policy pages' words: stages, rules and frequencies the policy
	// document allows (docs/policy.md), version statuses, the two kinds.
	var policyKeys []string
	for _, st := range policy.Stages {
		policyKeys = append(policyKeys, "stage."+string(st))
	}
	for _, r := range []policy.AmountRule{policy.RuleFixed, policy.RuleTiered, policy.RuleTuition, policy.RuleRequested} {
		policyKeys = append(policyKeys, "rule."+string(r))
	}
	for _, f := range []policy.Frequency{policy.OncePerTerm, policy.OncePerStudent} {
		policyKeys = append(policyKeys, "frequency."+string(f))
	}
	for _, st := range []string{"DRAFT", "PUBLISHED"} {
		policyKeys = append(policyKeys, "policy.status."+st)
	}
	for _, k := range policyKinds {
		policyKeys = append(policyKeys, "policy.kind."+k)
	}
	for _, k := range policyKeys {
		if _, ok := messages[k]; !ok {
			t.Errorf("no word for %s", k)
		}
	}
}

// TestEveryStateIsTranslated: the batch, item, clue and refund statuses the
// pages show through stateKey, and the back-pay statuses, all have words.
func TestEveryStateIsTranslated(t *testing.T) {
	var keys []string
	for _, names := range []map[int32]string{financev1.BatchStatus_name, financev1.ItemStatus_name,
		datacomparisonv1.ClueStatus_name, datacomparisonv1.RefundStatus_name} {
		for v := range names {
			if v == 0 {
				continue
			}
			keys = append(keys, stateKey(protoEnum(names[v])))
		}
	}
	for _, s := range []string{"opened", "applied", "paid"} {
		keys = append(keys, "backpay."+s)
	}
	for _, k := range keys {
		if _, ok := messages[k]; !ok {
			t.Errorf("no words for %s", k)
		}
	}
	if got := stateKey(financev1.BatchStatus_BATCH_STATUS_CLOSED); got != "state.CLOSED" {
		t.Errorf("stateKey(BATCH_STATUS_CLOSED) = %q, want state.CLOSED", got)
	}
}

// protoEnum is an enum value's name as its String method gives it.
type protoEnum string

func (p protoEnum) String() string { return string(p) }
