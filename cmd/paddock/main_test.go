package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	"testing"
)

// TestMain lets the test binary act as the paddock binary when a test starts
// it as a child process (the local provisioner runs `paddock node`), so the
// real subcommand is exercised without building the binary first. The
// provisioner gives nodes a minimal environment, so the test binary knows
// by its arguments: `go test` never starts it with a subcommand.
func TestMain(m *testing.M) {
	if os.Getenv("PADDOCK_TEST_AS_PADDOCK") == "1" || (len(os.Args) > 1 && os.Args[1] == "node") {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
		stop()
		if err != nil {
			os.Stderr.WriteString("paddock: " + err.Error() + "\n")
			os.Exit(processStatus(err))
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}
