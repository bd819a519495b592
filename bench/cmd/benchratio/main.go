// Command benchratio reads `go test -bench` output on stdin, passes it through
// unchanged, and then prints how every variant of a benchmark compares with a
// baseline variant from the same run: with -base codec=paddock, the line
// BenchmarkTrade/codec=protobuf/op=encode is compared with
// BenchmarkTrade/codec=paddock/op=encode. Ratios from one run on one machine
// are what the project's targets are stated in.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
)

type result struct {
	nsPerOp float64
	allocs  string
}

func main() {
	base := flag.String("base", "codec=paddock", "key=value of the baseline sub-benchmark")
	flag.Parse()
	if err := run(os.Stdin, os.Stdout, *base); err != nil {
		fmt.Fprintln(os.Stderr, "benchratio:", err)
		os.Exit(1)
	}
}

func run(in io.Reader, out io.Writer, base string) error {
	key, _, ok := strings.Cut(base, "=")
	if !ok {
		return fmt.Errorf("-base %q is not key=value", base)
	}
	results := map[string]result{}
	var order []string
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		line := sc.Text()
		fmt.Fprintln(out, line)
		name, r, ok := parseLine(line)
		if !ok {
			continue
		}
		if _, seen := results[name]; !seen {
			order = append(order, name)
		}
		results[name] = r
	}
	if err := sc.Err(); err != nil {
		return err
	}
	type row struct{ group, variant, ratio string }
	var rows []row
	for _, name := range order {
		parts := strings.Split(name, "/")
		idx := -1
		for i, p := range parts {
			if strings.HasPrefix(p, key+"=") {
				idx = i
			}
		}
		if idx < 0 || parts[idx] == base {
			continue
		}
		variant := parts[idx]
		parts[idx] = base
		b, ok := results[strings.Join(parts, "/")]
		if !ok || b.nsPerOp == 0 {
			continue
		}
		parts[idx] = key + "=*"
		r := results[name]
		rows = append(rows, row{strings.Join(parts, "/"), variant,
			fmt.Sprintf("%.1fx slower (%s vs %s ns/op, %s vs %s allocs/op)", r.nsPerOp/b.nsPerOp,
				trim(r.nsPerOp), trim(b.nsPerOp), r.allocs, b.allocs)})
	}
	if len(rows) == 0 {
		return nil
	}
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].group < rows[j].group })
	fmt.Fprintf(out, "\nCompared with %s in the same run:\n", base)
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	for _, r := range rows {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", r.group, r.variant, r.ratio)
	}
	return tw.Flush()
}

func trim(f float64) string { return strconv.FormatFloat(f, 'g', 4, 64) }

// parseLine extracts the name (without the -GOMAXPROCS suffix), ns/op and
// allocs/op of a benchmark result line.
func parseLine(line string) (string, result, bool) {
	f := strings.Fields(line)
	if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
		return "", result{}, false
	}
	name := f[0]
	if i := strings.LastIndexByte(name, '-'); i > 0 {
		if _, err := strconv.Atoi(name[i+1:]); err == nil {
			name = name[:i]
		}
	}
	r := result{allocs: "?"}
	found := false
	for i := 1; i+1 < len(f); i++ {
		switch f[i+1] {
		case "ns/op":
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				return "", result{}, false
			}
			r.nsPerOp, found = v, true
		case "allocs/op":
			r.allocs = f[i]
		}
	}
	return name, r, found
}
