// Package natsdev runs a real NATS server with JetStream inside the calling
// process, for the development stack (`devstack natsd`) and tests. It links
// the nats-server library, which is why it lives with the dev tooling: no
// service binary imports it.
//
// The server admits only the NKey users of natsx.Identities, each with its
// permissions; Keys generates and stores their seeds.
package natsdev

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"

	"github.com/edubureau/studentaid/pkg/natsx"
)

// Keys are the NKey user seeds of the identities of natsx.Identities, by
// identity name.
type Keys map[string]string

// NewKeys generates a fresh NKey user for every identity.
func NewKeys() (Keys, error) {
	k := Keys{}
	for _, id := range natsx.Identities() {
		kp, err := nkeys.CreateUser()
		if err != nil {
			return nil, fmt.Errorf("nkey %s: %w", id.Name, err)
		}
		seed, err := kp.Seed()
		if err != nil {
			return nil, fmt.Errorf("nkey %s: %w", id.Name, err)
		}
		k[id.Name] = string(seed)
	}
	return k, nil
}

// SeedFile is the file under a keys folder that holds identity's seed.
func SeedFile(dir, identity string) string { return filepath.Join(dir, identity+".nk") }

// LoadOrCreateKeys reads the seeds under dir (one file per identity,
// SeedFile), generating and writing (mode 0600) those that are missing.
func LoadOrCreateKeys(dir string) (Keys, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	fresh, err := NewKeys()
	if err != nil {
		return nil, err
	}
	k := Keys{}
	for name, seed := range fresh {
		file := SeedFile(dir, name)
		b, err := os.ReadFile(file)
		switch {
		case err == nil:
			k[name] = string(b)
		case errors.Is(err, os.ErrNotExist):
			if err := os.WriteFile(file, []byte(seed), 0o600); err != nil {
				return nil, err
			}
			k[name] = seed
		default:
			return nil, err
		}
	}
	return k, nil
}

// Seed returns identity's seed ("" if it has none).
func (k Keys) Seed(identity string) string { return k[identity] }

// users are the server's NKey users: every identity with its permissions.
func (k Keys) users() ([]*server.NkeyUser, error) {
	var out []*server.NkeyUser
	for _, id := range natsx.Identities() {
		seed, ok := k[id.Name]
		if !ok {
			return nil, fmt.Errorf("embedded nats: no key for identity %s", id.Name)
		}
		kp, err := nkeys.FromSeed([]byte(seed))
		if err != nil {
			return nil, fmt.Errorf("embedded nats: key of %s: %w", id.Name, err)
		}
		pub, err := kp.PublicKey()
		if err != nil {
			return nil, err
		}
		out = append(out, &server.NkeyUser{Nkey: pub, Permissions: ServerPermissions(id.Permissions)})
	}
	return out, nil
}

// ServerPermissions turns a row of the permission table into the server's
// form: allow lists, everything else denied.
func ServerPermissions(p natsx.Permissions) *server.Permissions {
	return &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: p.Publish},
		Subscribe: &server.SubjectPermission{Allow: p.Subscribe},
	}
}

// Start starts a NATS server with JetStream in this process, storing its
// streams under dir and fsyncing every write (SyncAlways), on
// 127.0.0.1:port (0 picks a free port), admitting the users of keys only.
// Stop it with Shutdown.
func Start(dir string, port int, keys Keys) (*server.Server, error) {
	return StartWithMonitor(dir, port, 0, keys)
}

// StartWithMonitor is Start with the HTTP monitoring endpoint (/healthz,
// /varz, /jsz) on 127.0.0.1:httpPort when httpPort > 0.
func StartWithMonitor(dir string, port, httpPort int, keys Keys) (*server.Server, error) {
	opts, err := ServerOptions(dir, port, httpPort, keys)
	if err != nil {
		return nil, err
	}
	return StartServer(opts)
}

// ServerOptions are the options Start uses, for a caller that changes one
// (a load test turns SyncAlways off) before StartServer.
func ServerOptions(dir string, port, httpPort int, keys Keys) (*server.Options, error) {
	if port == 0 {
		port = server.RANDOM_PORT
	}
	users, err := keys.users()
	if err != nil {
		return nil, err
	}
	opts := &server.Options{
		ServerName: "aid-embedded",
		Host:       "127.0.0.1",
		Port:       port,
		JetStream:  true,
		StoreDir:   dir,
		SyncAlways: true,
		NoSigs:     true,
		NoLog:      true,
		Nkeys:      users,
	}
	if httpPort > 0 {
		opts.HTTPHost, opts.HTTPPort = "127.0.0.1", httpPort
	}
	return opts, nil
}

// JoinCluster makes opts the node name of the JetStream cluster "aid" on
// loopback: it listens for routes on clusterPort and routes to the other
// nodes' cluster ports. Every node of a cluster needs its own name and
// store.
func JoinCluster(opts *server.Options, name string, clusterPort int, peerPorts []int) {
	opts.ServerName = name
	opts.Cluster = server.ClusterOpts{Name: "aid", Host: "127.0.0.1", Port: clusterPort}
	var urls []string
	for _, p := range peerPorts {
		if p != clusterPort {
			urls = append(urls, fmt.Sprintf("nats-route://127.0.0.1:%d", p))
		}
	}
	opts.Routes = server.RoutesFromStr(strings.Join(urls, ","))
}

// StartServer starts a server with opts in this process and waits until it
// takes connections.
func StartServer(opts *server.Options) (*server.Server, error) {
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	go ns.Start()
	// Generous: a cluster node on a loaded machine takes a while to set up
	// its routes and JetStream.
	if !ns.ReadyForConnections(60 * time.Second) {
		ns.Shutdown()
		return nil, errors.New("embedded nats: not ready in 60s")
	}
	return ns, nil
}

// NKeyVariable is the nats.conf variable that holds identity's public NKey
// (deploy/nats/nkeys.conf): AID_NATS_NKEY_ and the upper-cased name.
func NKeyVariable(identity string) string {
	return "AID_NATS_NKEY_" + strings.ToUpper(strings.ReplaceAll(identity, "-", "_"))
}

// NKeysConf renders the public keys of keys as nats.conf variables, the
// deploy/nats/nkeys.conf a server includes.
func NKeysConf(keys Keys) (string, error) {
	var b strings.Builder
	b.WriteString("# Public NKeys of the NATS identities (`devstack nats-keys DIR` writes them).\n")
	for _, id := range natsx.Identities() {
		kp, err := nkeys.FromSeed([]byte(keys[id.Name]))
		if err != nil {
			return "", fmt.Errorf("key of %s: %w", id.Name, err)
		}
		pub, err := kp.PublicKey()
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "%s: %q\n", NKeyVariable(id.Name), pub)
	}
	return b.String(), nil
}

// AuthorizationConf renders natsx.Identities as the authorization block of
// nats.conf, each user's nkey a variable of nkeys.conf (NKeyVariable).
func AuthorizationConf() string {
	quote := func(ss []string) string {
		q := make([]string, len(ss))
		for i, s := range ss {
			q[i] = strconv.Quote(s)
		}
		return strings.Join(q, ", ")
	}
	var b strings.Builder
	b.WriteString("authorization {\n  users: [\n")
	for _, id := range natsx.Identities() {
		fmt.Fprintf(&b, "    {\n      # %s\n      nkey: $%s\n      permissions: {\n", id.Name, NKeyVariable(id.Name))
		fmt.Fprintf(&b, "        publish: {allow: [%s]}\n", quote(id.Publish))
		fmt.Fprintf(&b, "        subscribe: {allow: [%s]}\n      }\n    }\n", quote(id.Subscribe))
	}
	b.WriteString("  ]\n}\n")
	return b.String()
}

// Markers around the generated authorization block of a nats.conf.
const (
	ConfBegin = "# BEGIN authorization (generated from natsx.Identities by `make nats-conf`; do not edit)\n"
	ConfEnd   = "# END authorization\n"
)

// ConfBlock returns the generated block of a nats.conf's text, markers
// included, or "" when it has none.
func ConfBlock(text string) string {
	i := strings.Index(text, ConfBegin)
	j := strings.Index(text, ConfEnd)
	if i < 0 || j < i {
		return ""
	}
	return text[i : j+len(ConfEnd)]
}

// WriteAuthorizationConf replaces the generated block of the nats.conf at
// file with AuthorizationConf.
func WriteAuthorizationConf(file string) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	old := ConfBlock(string(b))
	if old == "" {
		return fmt.Errorf("%s has no %q … %q block", file, strings.TrimSpace(ConfBegin), strings.TrimSpace(ConfEnd))
	}
	text := strings.Replace(string(b), old, ConfBegin+AuthorizationConf()+ConfEnd, 1)
	return os.WriteFile(file, []byte(text), 0o644) //nolint:gosec // G306: a config file in the repository
}
