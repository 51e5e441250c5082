package stack

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Postgres is a throwaway PostgreSQL cluster.
type Postgres struct {
	Dir  string
	Port int
	URL  string
	asPG bool
}

// StartPostgres creates (if needed) and starts a cluster in dir on a free
// port, with fsync on. As root, initdb and the server run as the postgres
// user, which owns dir. PostgreSQL's server binaries come from PATH or
// /usr/lib/postgresql/*/bin.
func StartPostgres(ctx context.Context, dir string) (*Postgres, error) {
	return startPostgres(ctx, dir, nil)
}

// standbyName is the application_name the synchronous standby connects
// with, which the primary's synchronous_standby_names waits for.
const standbyName = "aidstandby"

// StartReplicated starts a primary in dir/primary that waits for a
// synchronous streaming standby, and that standby in dir/standby, made with
// pg_basebackup from the primary. URL of the pair is a multi-host
// connection string with target_session_attrs=read-write, so a client
// reconnects to whichever is the primary after a failover (Promote).
func StartReplicated(ctx context.Context, dir string) (primary, standby *Postgres, url string, err error) {
	primary, err = startPostgres(ctx, filepath.Join(dir, "primary"), []string{
		"-c synchronous_standby_names=" + standbyName,
		"-c wal_level=replica",
		"-c max_wal_senders=10",
	})
	if err != nil {
		return nil, nil, "", err
	}
	bin, err := pgBinDir()
	if err != nil {
		return nil, nil, "", err
	}
	sdir, err := filepath.Abs(filepath.Join(dir, "standby"))
	if err != nil {
		return nil, nil, "", err
	}
	standby = &Postgres{Dir: sdir, asPG: primary.asPG}
	if _, statErr := os.Stat(filepath.Join(sdir, "PG_VERSION")); os.IsNotExist(statErr) {
		if err := os.MkdirAll(sdir, 0o700); err != nil {
			return nil, nil, "", err
		}
		if standby.asPG {
			if err := chownToPostgres(sdir); err != nil {
				return nil, nil, "", err
			}
		}
		conn := fmt.Sprintf("host=127.0.0.1 port=%d user=postgres application_name=%s", primary.Port, standbyName)
		// Writes standby.signal and primary_conninfo (-R); the primary
		// blocks commits until the standby streams, so no commit is lost
		// when it is promoted.
		out, err := standby.command(ctx, filepath.Join(bin, "pg_basebackup"), "-D", sdir, "-d", conn, "-R", "-X", "stream", "-c", "fast").CombinedOutput()
		if err != nil {
			_ = primary.Stop()
			return nil, nil, "", fmt.Errorf("pg_basebackup: %w: %s", err, out)
		}
	}
	if err := standby.start(ctx, bin, []string{"-c hot_standby=on"}); err != nil {
		_ = primary.Stop()
		return nil, nil, "", err
	}
	url = fmt.Sprintf("postgres://postgres@127.0.0.1:%d,127.0.0.1:%d/postgres?sslmode=disable&target_session_attrs=read-write", primary.Port, standby.Port)
	return primary, standby, url, nil
}

// Promote makes a standby the primary (pg_ctl promote) and waits until it
// accepts writes.
func (p *Postgres) Promote(ctx context.Context) error {
	bin, err := pgBinDir()
	if err != nil {
		return err
	}
	if out, err := p.command(ctx, filepath.Join(bin, "pg_ctl"), "-D", p.Dir, "-w", "-t", "60", "promote").CombinedOutput(); err != nil {
		return fmt.Errorf("pg_ctl promote: %w: %s", err, out)
	}
	return waitPostgres(ctx, p.URL+"&target_session_attrs=read-write")
}

// Kill stops the cluster at once (immediate shutdown: no checkpoint, as
// when its machine is lost).
func (p *Postgres) Kill() error {
	bin, err := pgBinDir()
	if err != nil {
		return err
	}
	if out, err := p.command(context.Background(), filepath.Join(bin, "pg_ctl"), "-D", p.Dir, "-m", "immediate", "-w", "stop").CombinedOutput(); err != nil {
		return fmt.Errorf("pg_ctl stop -m immediate: %w: %s", err, out)
	}
	return nil
}

func startPostgres(ctx context.Context, dir string, extra []string) (*Postgres, error) {
	bin, err := pgBinDir()
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	p := &Postgres{Dir: abs, asPG: os.Geteuid() == 0}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, err
	}
	if p.asPG {
		if err := chownToPostgres(abs); err != nil {
			return nil, err
		}
	}
	if _, err := os.Stat(filepath.Join(abs, "PG_VERSION")); os.IsNotExist(err) {
		out, err := p.command(ctx, filepath.Join(bin, "initdb"), "-D", abs, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8").CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("initdb: %w: %s", err, out)
		}
	}
	if err := p.start(ctx, bin, extra); err != nil {
		return nil, err
	}
	return p, nil
}

// start starts the cluster in p.Dir on a free port with extra settings, and
// then those of AID_DEVSTACK_PG_OPTIONS (server options as pg_ctl -o takes
// them, e.g. "-c shared_preload_libraries=pg_stat_statements" to profile a
// load run).
func (p *Postgres) start(ctx context.Context, bin string, extra []string) error {
	var err error
	if p.Port, err = FreePort(ctx); err != nil {
		return err
	}
	opts := strings.Join(append([]string{
		"-p " + strconv.Itoa(p.Port),
		"-c listen_addresses=127.0.0.1",
		"-c unix_socket_directories=" + p.Dir,
		"-c max_connections=300",
		"-c shared_buffers=256MB",
		"-c fsync=on",
		"-c synchronous_commit=on",
	}, append(extra, strings.Fields(os.Getenv("AID_DEVSTACK_PG_OPTIONS"))...)...), " ")
	out, err := p.command(ctx, filepath.Join(bin, "pg_ctl"), "-D", p.Dir, "-l", filepath.Join(p.Dir, "server.log"), "-w", "-t", "60", "-o", opts, "start").CombinedOutput()
	if err != nil {
		return fmt.Errorf("pg_ctl start: %w: %s", err, out)
	}
	p.URL = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", p.Port)
	if err := waitPostgres(ctx, p.URL); err != nil {
		_ = p.Stop()
		return err
	}
	return nil
}

// Stop stops the cluster (fast shutdown) and keeps its files.
func (p *Postgres) Stop() error {
	bin, err := pgBinDir()
	if err != nil {
		return err
	}
	out, err := p.command(context.Background(), filepath.Join(bin, "pg_ctl"), "-D", p.Dir, "-m", "fast", "-w", "stop").CombinedOutput()
	if err != nil {
		return fmt.Errorf("pg_ctl stop: %w: %s", err, out)
	}
	return nil
}

// Restart stops and starts the cluster on the same port (used by fault tests).
func (p *Postgres) Restart(ctx context.Context, mode string) error {
	bin, err := pgBinDir()
	if err != nil {
		return err
	}
	// -l again: without it the restarted server would write to (and hold
	// open) pg_ctl's output.
	out, err := p.command(ctx, filepath.Join(bin, "pg_ctl"), "-D", p.Dir, "-l", filepath.Join(p.Dir, "server.log"), "-m", mode, "-w", "-t", "60", "restart").CombinedOutput()
	if err != nil {
		return fmt.Errorf("pg_ctl restart: %w: %s", err, out)
	}
	return waitPostgres(ctx, p.URL)
}

func (p *Postgres) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	if p.asPG {
		return exec.CommandContext(ctx, "runuser", append([]string{"-u", "postgres", "--", name}, args...)...) //nolint:gosec // G702: a development tool; AID_DEVSTACK_PG_OPTIONS is the developer's own server options
	}
	return exec.CommandContext(ctx, name, args...) //nolint:gosec // G702: as above
}

func waitPostgres(ctx context.Context, url string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		conn, err := pgx.Connect(cctx, url)
		cancel()
		if err == nil {
			_ = conn.Close(ctx) // the connection only proved the server up
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("postgres not reachable: %w", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func pgBinDir() (string, error) {
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		// A link in PATH (/usr/local/bin/pg_ctl) leads to the directory
		// holding the other server tools too (pg_basebackup).
		if target, err := filepath.EvalSymlinks(p); err == nil {
			p = target
		}
		return filepath.Dir(p), nil
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_ctl")
	if len(matches) == 0 {
		return "", errors.New("PostgreSQL server binaries (pg_ctl, initdb) not found: install postgresql or set DATABASE_URL")
	}
	return filepath.Dir(matches[len(matches)-1]), nil
}

func chownToPostgres(dir string) error {
	u, err := user.Lookup("postgres")
	if err != nil {
		return fmt.Errorf("running as root needs a postgres user to own the cluster: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	// The postgres user must be able to reach the directory.
	for d := filepath.Dir(dir); d != "/"; d = filepath.Dir(d) {
		if fi, err := os.Stat(d); err == nil && fi.Mode().Perm()&0o001 == 0 {
			_ = os.Chmod(d, fi.Mode().Perm()|0o011)
		}
	}
	// Walking inside an os.Root keeps every chown within dir, even if a
	// symlink appears in it during the walk.
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	return fs.WalkDir(root.FS(), ".", func(path string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return root.Lchown(path, uid, gid)
	})
}
