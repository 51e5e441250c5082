// Package natsdev runs a real NATS server with JetStream inside the calling
// process, for the development stack (`devstack natsd`) and tests. It links
// the nats-server library, which is why it lives with the dev tooling: no
// service binary imports it.
package natsdev

import (
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Start starts a NATS server with JetStream in this process, storing its
// streams under dir and fsyncing every write (SyncAlways), on
// 127.0.0.1:port (0 picks a free port). Stop it with Shutdown.
func Start(dir string, port int) (*server.Server, error) {
	return StartWithMonitor(dir, port, 0)
}

// StartWithMonitor is Start with the HTTP monitoring endpoint (/healthz,
// /varz, /jsz) on 127.0.0.1:httpPort when httpPort > 0.
func StartWithMonitor(dir string, port, httpPort int) (*server.Server, error) {
	if port == 0 {
		port = server.RANDOM_PORT
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
	}
	if httpPort > 0 {
		opts.HTTPHost, opts.HTTPPort = "127.0.0.1", httpPort
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		return nil, errors.New("embedded nats: not ready in 10s")
	}
	return ns, nil
}
