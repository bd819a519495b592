package main

import (
	"context"
	"errors"
	"flag"
	"io"

	"github.com/paddockhq/paddock/sandbox"
)

func init() {
	commands["node"] = command{"run a sandbox node from its configuration (started by the environment manager)", runNode}
}

func runNode(ctx context.Context, args []string, _, stderr io.Writer) error {
	fs := flag.NewFlagSet("node", flag.ContinueOnError)
	fs.SetOutput(stderr)
	config := fs.String("config", envDefault("PADDOCK_NODE_CONFIG", ""), "node configuration file [PADDOCK_NODE_CONFIG]")
	level := fs.String("log-level", "info", "debug, info, warn or error")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *config == "" {
		return usageError{"paddock node: -config is required"}
	}
	log, err := newLogger(*level, stderr)
	if err != nil {
		return err
	}
	c, err := sandbox.LoadConfig(*config)
	if err != nil {
		return err
	}
	if err := sandbox.Run(ctx, c, log); err != nil {
		if errors.Is(err, sandbox.ErrDeadlinePassed) {
			// A distinct status: the unit does not restart it, and on AWS
			// powers the instance off (it then terminates).
			return exitError{sandbox.ExitDeadline, err}
		}
		return err
	}
	return nil
}
