package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/paddockhq/paddock/internal/buildinfo"
)

func init() {
	commands["version"] = command{"print the build: module version, VCS revision, dirty flag, Go version", runVersion}
	commands["completion"] = command{"print shell completion: completion bash | completion zsh", runCompletion}
}

func runVersion(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	fs.SetOutput(stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	fmt.Fprintln(stdout, buildinfo.Read())
	return nil
}

// envCommands are `paddock env`'s subcommands, for completion.
var envCommands = []string{"validate", "up", "ls", "show", "extend", "stop", "start", "down", "approve", "refuse", "token-hash"}

func runCompletion(_ context.Context, args []string, stdout, _ io.Writer) error {
	if len(args) == 1 && isHelp(args[0]) {
		fmt.Fprintln(stdout, "usage: paddock completion bash|zsh\n  bash: source <(paddock completion bash)\n  zsh:  source <(paddock completion zsh)")
		return nil
	}
	if len(args) != 1 || (args[0] != "bash" && args[0] != "zsh") {
		return usageError{"usage: paddock completion bash|zsh"}
	}
	var cmds []string
	for n := range commands {
		cmds = append(cmds, n)
	}
	sort.Strings(cmds)
	script := fmt.Sprintf(`# paddock shell completion (%s)
_paddock() {
  local cur=${COMP_WORDS[COMP_CWORD]}
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=( $(compgen -W %q -- "$cur") )
  elif [ "$COMP_CWORD" -eq 2 ] && [ "${COMP_WORDS[1]}" = env ]; then
    COMPREPLY=( $(compgen -W %q -- "$cur") )
  elif [ "$COMP_CWORD" -eq 2 ] && [ "${COMP_WORDS[1]}" = wire ]; then
    COMPREPLY=( $(compgen -W "demo decode" -- "$cur") )
  elif [ "$COMP_CWORD" -eq 2 ] && [ "${COMP_WORDS[1]}" = completion ]; then
    COMPREPLY=( $(compgen -W "bash zsh" -- "$cur") )
  else
    COMPREPLY=( $(compgen -f -- "$cur") )
  fi
}
`, args[0], strings.Join(cmds, " "), strings.Join(envCommands, " "))
	if args[0] == "zsh" {
		script = "autoload -U +X bashcompinit && bashcompinit\n" + script
	}
	fmt.Fprint(stdout, script+"complete -F _paddock paddock\n")
	return nil
}
