// Package pgcluster starts a throwaway Postgres server from the binaries
// installed on the machine, in a temporary directory on a free port, for
// tests that must restart or stop the server without disturbing anyone else.
package pgcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"syscall"
)

// ErrNoBinaries says no Postgres server binaries were found.
var ErrNoBinaries = errors.New("no Postgres server binaries (initdb, pg_ctl) on PATH or under /usr/lib/postgresql/*/bin: install Postgres (Debian: apt-get install postgresql)")

// Cluster is a running throwaway server.
type Cluster struct {
	bin      string // directory of initdb, pg_ctl
	dir      string // temporary directory: data/, the socket and the log
	port     int
	maxConns int
	settings string              // further -c options for postgres
	cred     *syscall.Credential // run as this user when we are root
}

// Options adjust the server Start starts.
type Options struct {
	// MaxConnections is the server's max_connections; 0 means 50.
	MaxConnections int
	// Settings are further server settings, name to value; names and
	// values are letters, digits, '_' and '.' only.
	Settings map[string]string
}

// FindBinaries returns the directory holding initdb and pg_ctl: the one on
// PATH, else the newest /usr/lib/postgresql/<version>/bin.
func FindBinaries() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		dir := filepath.Dir(p)
		if _, err := os.Stat(filepath.Join(dir, "pg_ctl")); err == nil {
			return dir, nil
		}
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	sort.Slice(matches, func(i, j int) bool { return version(matches[i]) > version(matches[j]) })
	for _, m := range matches {
		dir := filepath.Dir(m)
		if _, err := os.Stat(filepath.Join(dir, "pg_ctl")); err == nil {
			return dir, nil
		}
	}
	return "", ErrNoBinaries
}

func version(initdb string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(initdb))))
	return v
}

// Start initializes a cluster in a new temporary directory and starts it on
// a free loopback port, with trust authentication for the user postgres.
// initdb and postgres refuse to run as root, so as root they run as the
// OS user postgres, which then owns the directory.
func Start(ctx context.Context, opts ...Options) (*Cluster, error) {
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	if o.MaxConnections == 0 {
		o.MaxConnections = 50
	}
	var settings string
	for _, name := range slices.Sorted(maps.Keys(o.Settings)) {
		value := o.Settings[name]
		if !plainSetting(name) || !plainSetting(value) {
			return nil, fmt.Errorf("server setting %q = %q: names and values may hold letters, digits, '_' and '.' only", name, value)
		}
		settings += " -c " + name + "=" + value
	}
	bin, err := FindBinaries()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "notified-pg-")
	if err != nil {
		return nil, fmt.Errorf("temporary directory: %w", err)
	}
	c := &Cluster{bin: bin, dir: dir, maxConns: o.MaxConnections, settings: settings}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			_ = os.RemoveAll(dir)
			return nil, fmt.Errorf("running as root, and there is no OS user postgres to run the server as: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		c.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			_ = os.RemoveAll(dir)
			return nil, fmt.Errorf("give %s to user postgres: %w", dir, err)
		}
	}
	if err := c.run(ctx, "initdb", "-D", c.data(), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	if c.port, err = freePort(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	if err := c.pgctl(ctx, "start"); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return c, nil
}

// Dir is the cluster's temporary directory.
func (c *Cluster) Dir() string { return c.dir }

// URL is the connection URL of the cluster's postgres database.
func (c *Cluster) URL() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", c.port)
}

// Restart stops the server (fast: open transactions are rolled back and
// sessions terminated) and starts it again on the same port.
func (c *Cluster) Restart(ctx context.Context) error {
	return c.pgctl(ctx, "restart")
}

// Pause stops the server (fast) and keeps its data, for Resume.
func (c *Cluster) Pause(ctx context.Context) error {
	return c.pgctl(ctx, "stop")
}

// Resume starts a paused server again on the same port.
func (c *Cluster) Resume(ctx context.Context) error {
	return c.pgctl(ctx, "start")
}

// Stop stops the server and removes its directory.
func (c *Cluster) Stop(ctx context.Context) error {
	err := c.pgctl(ctx, "stop")
	if rmErr := os.RemoveAll(c.dir); rmErr != nil && err == nil {
		err = fmt.Errorf("remove %s: %w", c.dir, rmErr)
	}
	return err
}

// StopWhenProcessExits starts a watcher process that stops the server and
// removes its directory once the process pid has exited, for a server that
// must outlive no one but has no one to stop it (a test binary has no hook
// that runs when it exits).
func (c *Cluster) StopWhenProcessExits(pid int) error {
	script := fmt.Sprintf(`while [ -d /proc/%d ]; do sleep 1; done; %q -D %q -m immediate stop >/dev/null 2>&1; rm -rf %q`,
		pid, filepath.Join(c.bin, "pg_ctl"), c.data(), c.dir)
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.Dir = c.dir
	// Its own session: it outlives the process it watches, and a Ctrl-C
	// meant for that process does not reach it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Credential: c.cred}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start the server's watcher: %w", err)
	}
	return cmd.Process.Release()
}

// plainSetting reports whether s is safe on pg_ctl's -o command line.
func plainSetting(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

func (c *Cluster) data() string { return filepath.Join(c.dir, "data") }

func (c *Cluster) pgctl(ctx context.Context, action string) error {
	args := []string{"-D", c.data(), "-l", filepath.Join(c.dir, "log"), "-w", "-t", "60"}
	if action != "stop" {
		args = append(args, "-o", fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=%d%s", c.port, c.dir, c.maxConns, c.settings))
	}
	if action != "start" {
		args = append(args, "-m", "fast")
	}
	return c.run(ctx, "pg_ctl", append(args, action)...)
}

func (c *Cluster) run(ctx context.Context, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, filepath.Join(c.bin, name), args...)
	cmd.Dir = c.dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if c.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	}
	if err := cmd.Run(); err != nil {
		log, _ := os.ReadFile(filepath.Join(c.dir, "log"))
		return fmt.Errorf("%s %s: %w\n%s\n%s", name, args[len(args)-1], err, out.String(), tail(log, 2000))
	}
	return nil
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
