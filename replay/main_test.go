package replay_test

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/paddockhq/paddock/internal/embednats"
)

// serverEnv, set, makes the test binary a NATS server (JetStream stored
// in its value) instead of running tests: the pacing benchmark replays
// through a server in another process, as a node does in production,
// so the server's goroutines do not share the replayer's scheduler.
const serverEnv = "PADDOCK_REPLAY_TEST_SERVER"

func TestMain(m *testing.M) {
	if dir := os.Getenv(serverEnv); dir != "" {
		ns, err := embednats.Start(embednats.Options{StoreDir: dir})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println(ns.ClientURL())
		_, _ = io.Copy(io.Discard, os.Stdin) // until the parent closes stdin or exits
		ns.Shutdown()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// serverProcess starts a NATS server in a child process (this test binary
// under serverEnv) and returns its URL; it stops when the test ends.
func serverProcess(tb testing.TB, dir string) string {
	tb.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), serverEnv+"="+dir)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		_ = stdin.Close()
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		tb.Fatalf("the server process: %v", err)
	}
	return strings.TrimSpace(line)
}
