package main

import (
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/paddockhq/paddock/envmgr/spec"

	"gopkg.in/yaml.v3"
)

// TestCIWorkflowUsesRealFlags: every `paddock env` command the CI-mode
// example runs parses with the CLI's own flags (the ${{ }} expressions
// replaced by plausible values), so the documented workflow cannot drift
// from the CLI.
func TestCIWorkflowUsesRealFlags(t *testing.T) {
	raw, err := os.ReadFile("../../examples/github/paddock.yml")
	if err != nil {
		t.Fatal(err)
	}
	var wf struct {
		Jobs map[string]struct {
			Steps []struct {
				Run string `yaml:"run"`
			} `yaml:"steps"`
		} `yaml:"jobs"`
	}
	if err := yaml.Unmarshal(raw, &wf); err != nil {
		t.Fatal(err)
	}
	expr := regexp.MustCompile(`\$\{\{[^}]*\}\}`)
	n := 0
	for job, j := range wf.Jobs {
		for _, st := range j.Steps {
			cmd := expr.ReplaceAllStringFunc(st.Run, func(e string) string {
				switch {
				case strings.Contains(e, "number"):
					return "7"
				case strings.Contains(e, "sha"):
					return "0123456789abcdef0123456789abcdef01234567"
				case strings.Contains(e, "repository"):
					return "acme/strategies"
				}
				return "feature-x"
			})
			args := strings.Fields(cmd)
			if len(args) < 3 || args[0] != "paddock" || args[1] != "env" {
				continue
			}
			n++
			f := newEnvFlags(args[2], os.Stderr)
			if _, ok := envSynopsis[args[2]]; !ok {
				t.Fatalf("%s: unknown command %q", job, args[2])
			}
			if _, err := f.parse(args[3:]); err != nil {
				t.Fatalf("%s: %q: %v", job, cmd, err)
			}
		}
	}
	if n != 3 {
		t.Fatalf("%d paddock env commands checked, want 3 (validate, up, down)", n)
	}
}

// TestReplayExampleIsValid: the documented replay example is a valid spec
// (its window is in the past for any day after it).
func TestReplayExampleIsValid(t *testing.T) {
	raw, err := os.ReadFile("../../examples/replay.dev-env.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s, err := spec.Parse(raw, spec.Options{Now: time.Date(2026, 12, 8, 0, 0, 0, 0, time.UTC), TTLApproved: true})
	if err != nil {
		t.Fatal(err)
	}
	if s.MarketData.Mode != "replay" || s.MarketData.ReplaySpeed != 1 {
		t.Fatalf("market data %+v", s.MarketData)
	}
}
