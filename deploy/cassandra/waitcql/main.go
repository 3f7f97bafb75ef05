// Command waitcql waits until a CQL server answers a query, for scripts
// that start a test database (deploy/cassandra/start.sh) where cqlsh is not
// installed. It retries `SELECT release_version FROM system.local` until it
// succeeds, printing the version, or until the deadline, exiting 1.
//
//	go run ./deploy/cassandra/waitcql -addr 127.0.0.1:9042 -timeout 180s
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/gocql/gocql"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9042", "CQL host:port")
	timeout := flag.Duration("timeout", 180*time.Second, "give up after this long")
	pid := flag.Int("pid", 0, "give up as soon as this process has exited (0: do not watch)")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	version, err := wait(ctx, *addr, *pid)
	if err != nil {
		fmt.Fprintf(os.Stderr, "waitcql: %s did not answer within %s: %v\n", *addr, *timeout, err)
		os.Exit(1)
	}
	fmt.Printf("waitcql: %s answers, release_version %s\n", *addr, version)
}

// wait retries the query every second until it succeeds, ctx ends or the
// process pid (if not 0) is gone, and returns the server's release version
// or the last error.
func wait(ctx context.Context, addr string, pid int) (string, error) {
	var last error
	for {
		if pid != 0 && syscall.Kill(pid, 0) == syscall.ESRCH {
			return "", fmt.Errorf("process %d exited (last error: %v)", pid, last)
		}
		v, err := query(ctx, addr)
		if err == nil {
			return v, nil
		}
		last = err
		select {
		case <-ctx.Done():
			return "", last
		case <-time.After(time.Second):
		}
	}
}

func query(ctx context.Context, addr string) (string, error) {
	cluster := gocql.NewCluster(addr)
	cluster.ConnectTimeout = 2 * time.Second
	cluster.Timeout = 5 * time.Second
	cluster.DisableInitialHostLookup = true
	cluster.Logger = quiet{}
	session, err := cluster.CreateSession()
	if err != nil {
		return "", fmt.Errorf("connect: %w", err)
	}
	defer session.Close()
	var v string
	if err := session.Query("SELECT release_version FROM system.local").WithContext(ctx).Scan(&v); err != nil {
		return "", fmt.Errorf("query: %w", err)
	}
	return v, nil
}

// quiet drops gocql's log lines: connection refusals are expected while the
// server starts.
type quiet struct{}

func (quiet) Print(...any)          {}
func (quiet) Printf(string, ...any) {}
func (quiet) Println(...any)        {}
