package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/edubureau/studentaid/pkg/natsx"
)

// natsdCommand runs the embedded NATS server (natsx.StartEmbedded, the same
// durable configuration the stack uses) in a child process of its own, so
// that its CPU time and memory are measured apart from the load generator's.
const natsdCommand = "natsd"

// runNATSD serves NATS from dir until SIGTERM or until stdin closes (the
// parent died). It prints the client URL on the first line of stdout.
func runNATSD(args []string) error {
	if len(args) != 1 {
		return errors.New("usage: loadgen natsd <store-dir>")
	}
	ns, err := natsx.StartEmbedded(args[0], 0)
	if err != nil {
		return err
	}
	fmt.Println(ns.ClientURL())
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		stop()
	}()
	<-ctx.Done()
	ns.Shutdown()
	ns.WaitForShutdown()
	return nil
}

// natsChild is the NATS server child process.
type natsChild struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	URL   string
}

// startNATSChild re-executes this binary as `loadgen natsd dir`.
func startNATSChild(dir string, logs io.Writer) (*natsChild, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, natsdCommand, dir)
	cmd.Stderr = logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case url, ok := <-lines:
		if !ok || !strings.HasPrefix(url, "nats://") {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			return nil, fmt.Errorf("NATS child did not start (got %q)", url)
		}
		return &natsChild{cmd: cmd, stdin: stdin, URL: url}, nil
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, errors.New("NATS child did not start within 20s")
	}
}

// Pid returns the child's process ID.
func (n *natsChild) Pid() int { return n.cmd.Process.Pid }

// Stop asks the child to shut down and waits for it.
func (n *natsChild) Stop() {
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = n.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = n.cmd.Process.Kill()
		<-done
	}
	_ = n.stdin.Close()
}
