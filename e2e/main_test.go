// Package e2e runs the whole system as separate processes — PostgreSQL,
// NATS JetStream, Jaeger, the bank simulator and the five services — and
// drives it through the public APIs.
package e2e

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edubureau/studentaid/internal/devtools/stack"
)

// binDir holds the binaries under test: AID_BIN_DIR (set by `make test`) or
// a fresh build made by TestMain.
var binDir string

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		fmt.Println("e2e: skipped in -short mode")
		os.Exit(0)
	}
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	binDir = os.Getenv("AID_BIN_DIR")
	if binDir == "" {
		dir, err := os.MkdirTemp("", "aid-e2e-bin-")
		if err != nil {
			return 0, err
		}
		defer os.RemoveAll(dir)
		pkgs := []string{"../cmd/banksim", "../cmd/devstack", "../cmd/gateway", "../services/console/cmd/console"}
		for _, s := range stack.Services {
			pkgs = append(pkgs, "../services/"+s+"/cmd/"+s)
		}
		cmd := exec.Command("go", append([]string{"build", "-o", dir + "/"}, pkgs...)...)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return 0, fmt.Errorf("build: %w", err)
		}
		binDir = dir
	}
	return m.Run(), nil
}

// startStack brings the system up for one test on a fresh database and an
// embedded NATS server, with Jaeger when JAEGER_BIN is set.
func startStack(t *testing.T, env map[string]string, jaeger bool) *stack.Stack {
	t.Helper()
	return startStackWith(t, env, jaeger, nil)
}

// startStackWith is startStack with more options set by edit (Dir, BinDir
// and the database are filled in before).
func startStackWith(t *testing.T, env map[string]string, jaeger bool, edit func(*stack.Options)) *stack.Stack {
	t.Helper()
	dir := t.TempDir()
	opts := stack.Options{Dir: dir, BinDir: binDir, FreshDatabase: true, Env: env, DatabaseURL: os.Getenv("DATABASE_URL")}
	if opts.DatabaseURL == "" {
		opts.DatabaseURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	}
	if jaeger {
		opts.JaegerBin = jaegerBin(t)
	}
	if edit != nil {
		edit(&opts)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s, err := stack.Start(ctx, opts)
	if err != nil {
		dumpLogs(t, dir)
		t.Fatalf("start stack: %v", err)
	}
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			dumpLogs(t, dir)
		}
	})
	return s
}

func jaegerBin(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("JAEGER_BIN")
	if bin == "" {
		bin, _ = filepath.Abs("../.cache/bin/jaeger")
	}
	if _, err := os.Stat(bin); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("Jaeger binary %s missing in CI: `make test` builds it", bin)
		}
		t.Skipf("Jaeger binary %s not built (run `make jaeger`); skipping the trace assertions", bin)
	}
	return bin
}

// dumpLogs prints the tail of each process log, for diagnosing a failure.
func dumpLogs(t *testing.T, dir string) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "logs", "*.log"))
	for _, f := range files {
		b, _ := os.ReadFile(f)
		lines := strings.Split(string(b), "\n")
		if len(lines) > 40 {
			lines = lines[len(lines)-40:]
		}
		t.Logf("--- %s (last lines)\n%s", filepath.Base(f), strings.Join(lines, "\n"))
	}
}
