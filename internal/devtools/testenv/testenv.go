// Package testenv gives tests real infrastructure: a fresh PostgreSQL
// database on the server named by DATABASE_URL (default: the local one), and
// a real NATS JetStream server embedded in the test process (natsdev).
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/edubureau/studentaid/internal/devtools/natsdev"
	"github.com/edubureau/studentaid/pkg/config"
	"github.com/edubureau/studentaid/pkg/db"
	"github.com/edubureau/studentaid/pkg/natsx"
)

// DatabaseURL creates a new, empty database for the test and drops it when
// the test ends. It returns the new database's URL.
func DatabaseURL(t testing.TB) string {
	t.Helper()
	base := config.Env("DATABASE_URL", config.DefaultDatabaseURL)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("testenv: connect %s: %v (set DATABASE_URL or run the tests through `make test`)", redact(base), err)
	}
	defer conn.Close(ctx)
	name := "t_" + RandomHex(6)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("testenv: create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Logf("testenv: drop database %s: %v", name, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Logf("testenv: drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("testenv: parse DATABASE_URL: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

// Pool opens a pool on a fresh database (see DatabaseURL) with search_path
// set to schema, closed when the test ends.
func Pool(t testing.TB, schema string) (*pgxpool.Pool, string) {
	t.Helper()
	dbURL := DatabaseURL(t)
	pool, err := db.Connect(context.Background(), dbURL, db.Options{SearchPath: schema})
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool, dbURL
}

// natsKeys are the NKeys of the test process: every embedded server it
// starts admits these users (natsx.Identities).
var natsKeys = sync.OnceValues(natsdev.NewKeys)

// NATSSeed returns the NKey seed of a NATS identity (a service name,
// natsx.AdminIdentity or natsx.LoadgenIdentity) for the servers NATS starts.
func NATSSeed(t testing.TB, identity string) string {
	t.Helper()
	keys, err := natsKeys()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	seed := keys.Seed(identity)
	if seed == "" {
		t.Fatalf("testenv: no NATS identity %q", identity)
	}
	return seed
}

// NATS starts an embedded JetStream server for the test, admitting the
// identities of natsx.Identities with their permissions only (NATSSeed),
// creates the streams as the admin (the setup step) and returns its URL.
func NATS(t testing.TB) string {
	t.Helper()
	return NATSWith(t, nil)
}

// NATSWith is NATS with the server's options changed by tweak first (nil
// changes nothing).
func NATSWith(t testing.TB, tweak func(*server.Options)) string {
	t.Helper()
	keys, err := natsKeys()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	opts, err := natsdev.ServerOptions(t.TempDir(), 0, 0, keys)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	if tweak != nil {
		tweak(opts)
	}
	ns, err := natsdev.StartServer(opts)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(ns.Shutdown)
	nc, js, err := natsx.Connect(ns.ClientURL(), "testenv", natsx.WithNKeySeed(keys.Seed(natsx.AdminIdentity)))
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := natsx.EnsureStreams(ctx, js); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return ns.ClientURL()
}

// ConnectNATS connects to url as identity (NATSSeed), closed when the test ends.
func ConnectNATS(t testing.TB, url, identity string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, js, err := natsx.Connect(url, identity, natsx.WithNKeySeed(NATSSeed(t, identity)))
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc, js
}

// RandomHex returns n random bytes as hex.
func RandomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparseable url)"
	}
	return u.Redacted()
}
