package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
)

// usageError marks errors in how paddock was called; main exits 2 for them.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// errHelp is returned when -h or --help asked for a command's usage, which
// the flag set has printed: paddock exits 0.
var errHelp = flag.ErrHelp

// parseFlags parses a command's flags: -h/--help print the usage to stdout
// and end the command successfully; a bad flag is a usage error (exit 2).
func parseFlags(fs *flag.FlagSet, args []string) error {
	err := fs.Parse(args)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, flag.ErrHelp):
		return errHelp
	}
	return usageError{err.Error()}
}

func isHelp(arg string) bool {
	return arg == "-h" || arg == "--help" || arg == "-help" || arg == "help"
}

type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// commands is filled by the files that implement each subcommand.
var commands = map[string]command{}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || isHelp(args[0]) {
		fmt.Fprint(stdout, usage())
		if len(args) == 0 {
			return usageError{"no command given"}
		}
		return nil
	}
	if args[0] == "-version" || args[0] == "--version" {
		args[0] = "version"
	}
	cmd, ok := commands[args[0]]
	if !ok {
		return usageError{fmt.Sprintf("unknown command %q\n%s", args[0], usage())}
	}
	err := cmd.run(ctx, args[1:], stdout, stderr)
	if errors.Is(err, errHelp) {
		return nil // the usage is printed; asking for it is no error
	}
	return err
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
