package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/paddockhq/paddock/proto"
)

// Subscribers run in a child process (-subscribers=process, the default: in
// production every sandbox node is its own process) or in the benchmark's
// own process (-subscribers=inprocess: one Go runtime on the machine, which
// on two cores has the lower tail latency).
//
// The child is this program re-executed with -role=sub. It subscribes with
// k connections, prints "ready", and once it has received n messages per
// connection (or timed out) writes one record per delivery to -out:
// three little-endian int64s (a, b, c), where for trades a is the trade id,
// b the receive time and c the header's recv_time, and for raw messages a is
// the publish time carried in the message, b the receive time, c zero.

type subResult struct {
	records  [][3]int64
	received int64
	last     int64 // ns of the last delivery
}

// subprocess starts the child and returns once it is subscribed; wait
// collects its records after the run.
func subprocess(ctx context.Context, url, subject string, k, n int, timeout time.Duration) (wait func() (subResult, error), err error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	out, err := os.CreateTemp("", "paddock-e2e-sub-*")
	if err != nil {
		return nil, err
	}
	out.Close()
	cmd := exec.CommandContext(ctx, exe, "-role=sub", "-url", url, "-subject", subject, "-k", strconv.Itoa(k), "-n", strconv.Itoa(n),
		"-timeout", timeout.String(), "-out", out.Name())
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "ready\n" {
		_ = cmd.Process.Kill()
		return nil, fmt.Errorf("subscriber process did not get ready: %q %v", line, err)
	}
	wait = func() (subResult, error) {
		defer os.Remove(out.Name())
		if err := cmd.Wait(); err != nil {
			return subResult{}, fmt.Errorf("subscriber process: %w", err)
		}
		raw, err := os.ReadFile(out.Name())
		if err != nil {
			return subResult{}, err
		}
		var r subResult
		for off := 0; off+24 <= len(raw); off += 24 {
			rec := [3]int64{int64(binary.LittleEndian.Uint64(raw[off:])), int64(binary.LittleEndian.Uint64(raw[off+8:])), int64(binary.LittleEndian.Uint64(raw[off+16:]))}
			r.records = append(r.records, rec)
			r.last = max(r.last, rec[1])
		}
		r.received = int64(len(r.records))
		return r, nil
	}
	return wait, nil
}

// subMain is the child process.
func subMain() error {
	fs := flag.NewFlagSet("sub", flag.ContinueOnError)
	url := fs.String("url", "", "")
	subject := fs.String("subject", "", "")
	k := fs.Int("k", 1, "")
	n := fs.Int("n", 0, "")
	timeout := fs.Duration("timeout", time.Minute, "")
	outPath := fs.String("out", "", "")
	var args []string
	for _, a := range os.Args[1:] {
		if a != "-role=sub" {
			args = append(args, a)
		}
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	recs, err := collect(*url, *subject, *k, *n, *timeout, func() { fmt.Println("ready") })
	if err != nil {
		return err
	}
	f, err := os.Create(*outPath)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	var b [24]byte
	for _, r := range recs {
		binary.LittleEndian.PutUint64(b[0:], uint64(r[0]))
		binary.LittleEndian.PutUint64(b[8:], uint64(r[1]))
		binary.LittleEndian.PutUint64(b[16:], uint64(r[2]))
		_, _ = w.Write(b[:])
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return f.Close()
}

// collect subscribes k connections to subject, calls ready, and returns one
// record per delivery once n messages per connection arrived or timeout
// passed. It is the whole subscriber side, in either process.
func collect(url, subject string, k, n int, timeout time.Duration, ready func()) ([][3]int64, error) {
	recs := make([][][3]int64, k)
	var received atomic.Int64
	trades := subject != "bench.rawlat" && subject != "bench.raw"
	var conns []*nats.Conn
	defer func() {
		for _, nc := range conns {
			nc.Close()
		}
	}()
	for i := range k {
		nc, err := nats.Connect(url, nats.Name("e2e-sub"))
		if err != nil {
			return nil, err
		}
		conns = append(conns, nc)
		recs[i] = make([][3]int64, 0, n)
		sub, err := nc.Subscribe(subject, func(m *nats.Msg) {
			now := time.Now().UnixNano()
			if trades {
				tv, err := proto.DecodeTrade(m.Data)
				if err != nil {
					return
				}
				recs[i] = append(recs[i], [3]int64{int64(tv.TradeID()), now, tv.RecvTime()})
			} else {
				recs[i] = append(recs[i], [3]int64{int64(binary.LittleEndian.Uint64(m.Data[16:])), now, 0})
			}
			received.Add(1)
		})
		if err != nil {
			return nil, err
		}
		_ = sub.SetPendingLimits(-1, -1)
		if err := nc.Flush(); err != nil {
			return nil, err
		}
	}
	ready()
	want := int64(n) * int64(k)
	deadline := time.Now().Add(timeout)
	for received.Load() < want && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond) // a completion poll, not synchronization of shared state
	}
	for _, nc := range conns {
		nc.Close() // stops the callbacks before recs is read
	}
	var all [][3]int64
	for _, r := range recs {
		all = append(all, r...)
	}
	return all, nil
}

// inprocess runs collect in this process; the result of wait has the same
// shape as a child's.
func inprocess(url, subject string, k, n int, timeout time.Duration) (wait func() (subResult, error), err error) {
	readyc := make(chan struct{})
	type result struct {
		recs [][3]int64
		err  error
	}
	done := make(chan result, 1)
	go func() {
		recs, err := collect(url, subject, k, n, timeout, func() { close(readyc) })
		done <- result{recs, err}
	}()
	select {
	case <-readyc:
	case r := <-done:
		return nil, r.err
	}
	return func() (subResult, error) {
		r := <-done
		if r.err != nil {
			return subResult{}, r.err
		}
		res := subResult{records: r.recs, received: int64(len(r.recs))}
		for _, rec := range r.recs {
			res.last = max(res.last, rec[1])
		}
		return res, nil
	}, nil
}

// subscribers starts k subscribers in the configured topology.
func subscribers(ctx context.Context, url, subject string, k, n int, timeout time.Duration) (func() (subResult, error), error) {
	if topology == "inprocess" {
		return inprocess(url, subject, k, n, timeout)
	}
	return subprocess(ctx, url, subject, k, n, timeout)
}

var topology = "process"
