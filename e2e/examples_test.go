package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// exampleBlock is a shell block the documents mark as run by the tests.
var exampleBlock = regexp.MustCompile("(?s)<!-- example: run -->\\s*```sh\\n(.*?)```")

// examples returns the marked shell blocks of a document, in order.
func examples(t *testing.T, doc string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", doc))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range exampleBlock.FindAllStringSubmatch(string(b), -1) {
		out = append(out, m[1])
	}
	return out
}

// TestDocumentExamples runs the README's walk-through and docs/api.md's
// examples, as written, with bash against the one entry point of a stack:
// every command checks its answer (curl -f, jq -e), so an example that
// rots fails here.
func TestDocumentExamples(t *testing.T) {
	if _, err := exec.LookPath("jq"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("jq missing in CI: .ci/run installs it")
		}
		t.Skip("jq not installed; the documents' examples use it")
	}
	s := startStack(t, map[string]string{"SCHOOL_REVIEW_NOTICE_PERIOD": "2s"}, false)
	readme, api := examples(t, "README.md"), examples(t, "docs/api.md")
	if len(readme) < 2 || len(api) < 1 {
		t.Fatalf("marked examples: README %d, docs/api.md %d; want the tokens and the walk-through, and the feed", len(readme), len(api))
	}
	script := "set -euo pipefail\n" + strings.Join(readme, "\n") + "\n" + strings.Join(api, "\n")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", script)
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(),
		"AID_DEV_DIR="+filepath.Dir(s.KeyDir),
		"API=http://"+s.Gateway,
		"BANK="+s.BankURL,
		"APPLICATION_GRPC_ADDR="+s.Endpoints["application"].GRPC,
	)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the documents' examples failed: %v\n%s", err, out)
	}
}
