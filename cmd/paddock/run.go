package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
)

// usageError marks errors in how paddock was called; main exits 2 for them.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// commands is filled by the files that implement each subcommand.
var commands = map[string]command{}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stdout, usage())
		if len(args) == 0 {
			return usageError{"no command given"}
		}
		return nil
	}
	cmd, ok := commands[args[0]]
	if !ok {
		return usageError{fmt.Sprintf("unknown command %q\n%s", args[0], usage())}
	}
	return cmd.run(ctx, args[1:], stdout, stderr)
}

func usage() string {
	var b strings.Builder
	b.WriteString("usage: paddock <command> [flags]\n\ncommands:\n")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(&b, "  %-8s %s\n", n, commands[n].summary)
	}
	return b.String()
}
