// Package testnode lets a test binary stand in for `paddock node`, so tests
// of provisioners start real node processes without building the paddock
// binary first. Call MaybeRun at the top of TestMain and use Command as the
// provisioner's node command.
package testnode

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"github.com/paddockhq/paddock/sandbox"
)

const (
	envFlag   = "PADDOCK_TEST_NODE"
	envConfig = "PADDOCK_NODE_CONFIG"
)

// MaybeRun runs a node and exits when this process was started by Command;
// otherwise it returns at once.
func MaybeRun() {
	if os.Getenv(envFlag) != "1" {
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	c, err := sandbox.LoadConfig(os.Getenv(envConfig))
	if err == nil {
		err = sandbox.Run(ctx, c, nil)
	}
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "test node:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// Command runs this test binary as a node with the given configuration. The
// path is also an argument: the local provisioner recognizes its nodes by it.
func Command(configPath string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$", "--", configPath)
	cmd.Env = append(os.Environ(), envFlag+"=1", envConfig+"="+configPath)
	return cmd
}
