// Command paddock is the single binary of paddock: the feed multiplexer, the
// venue simulator, the environment manager, the sandbox node and the
// developer CLI are its subcommands.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	// SIGHUP (the terminal closed) stops everything like Ctrl-C: no node or
	// strategy is left running without its manager.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "paddock:", err)
		os.Exit(processStatus(err))
	}
}

// processStatus is the process status for an error: 2 for usage, a command's
// own code (exitCoder), else 1.
func processStatus(err error) int {
	var ue usageError
	if errors.As(err, &ue) {
		return 2
	}
	var ec exitCoder
	if errors.As(err, &ec) {
		return ec.ExitCode()
	}
	return 1
}
