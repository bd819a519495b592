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
		var ue usageError
		if errors.As(err, &ue) {
			os.Exit(2)
		}
		var ec exitCoder
		if errors.As(err, &ec) {
			os.Exit(ec.ExitCode())
		}
		os.Exit(1)
	}
}
