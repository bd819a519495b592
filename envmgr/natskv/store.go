// Package natskv stores environments in a NATS JetStream key-value bucket
// (one key per environment, with history) and the audit log in a JetStream
// stream (one subject per environment). Both work on the embedded server and
// on a cluster, where Replicas makes them survive a node loss.
package natskv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/paddockhq/paddock/envmgr"
	"github.com/paddockhq/paddock/proto"
)

const (
	bucket       = "paddock_environments"
	auditStream  = "PADDOCK_AUDIT"
	auditSubject = "paddock.audit."
	history      = 64 // JetStream's maximum per key
)

// Options configure the store.
type Options struct {
	Replicas int // 1 on the embedded server; 3 on a production cluster
	// Redial, when set, makes a new connection after the server closed the
	// current one for good (nats.go reconnects by itself after a network
	// outage, but not after a protocol error the server closes on). The
	// store drains the connections it made in Close; the first connection
	// stays the caller's.
	Redial func() (*nats.Conn, error)
	// Audit retention: the audit stream keeps records at most this long, at
	// most this many bytes, and at most this many records per environment,
	// dropping the oldest first. Zero means unlimited.
	AuditMaxAge    time.Duration
	AuditMaxBytes  int64
	AuditMaxPerEnv int64
}

// Store implements envmgr.Store. Safe for concurrent use; Close ends it.
type Store struct {
	o Options

	mu      sync.Mutex
	nc      *nats.Conn
	js      jetstream.JetStream
	kv      jetstream.KeyValue
	owned   []*nats.Conn // made by Redial; drained by Close
	lastTry time.Time
}

var _ envmgr.Store = (*Store)(nil)

// redialEvery bounds how often a closed connection is replaced.
const redialEvery = time.Second

// Open creates (or opens) the bucket and the audit stream.
func Open(ctx context.Context, nc *nats.Conn, o Options) (*Store, error) {
	if o.Replicas <= 0 {
		o.Replicas = 1
	}
	s := &Store{o: o}
	if err := s.attach(ctx, nc); err != nil {
		return nil, err
	}
	return s, nil
}

// attach opens the bucket and the audit stream over nc and makes it current.
func (s *Store) attach(ctx context.Context, nc *nats.Conn) error {
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: bucket, History: history, Replicas: s.o.Replicas,
		Description: "paddock sandbox environments, one key per environment",
	})
	if err != nil {
		return fmt.Errorf("open key-value bucket %s: %w", bucket, unavailable(err))
	}
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: auditStream, Subjects: []string{auditSubject + ">"}, Replicas: s.o.Replicas,
		Storage: jetstream.FileStorage, Description: "paddock environment audit log",
		MaxAge: s.o.AuditMaxAge, MaxBytes: orUnlimited(s.o.AuditMaxBytes), MaxMsgsPerSubject: orUnlimited(s.o.AuditMaxPerEnv),
		Discard: jetstream.DiscardOld,
	}); err != nil {
		return fmt.Errorf("open audit stream: %w", unavailable(err))
	}
	s.mu.Lock()
	s.nc, s.js, s.kv = nc, js, kv
	s.mu.Unlock()
	return nil
}

func orUnlimited(n int64) int64 {
	if n <= 0 {
		return -1
	}
	return n
}

// handles returns the current JetStream handles, first replacing a
// connection the server closed for good (when Redial is set).
func (s *Store) handles(ctx context.Context) (jetstream.JetStream, jetstream.KeyValue, error) {
	s.mu.Lock()
	nc, js, kv := s.nc, s.js, s.kv
	if !nc.IsClosed() || s.o.Redial == nil {
		s.mu.Unlock()
		return js, kv, nil
	}
	if time.Since(s.lastTry) < redialEvery {
		s.mu.Unlock()
		return nil, nil, fmt.Errorf("%w: the NATS connection is closed; reconnecting", envmgr.ErrUnavailable)
	}
	s.lastTry = time.Now()
	s.mu.Unlock()
	fresh, err := s.o.Redial()
	if err != nil {
		return nil, nil, fmt.Errorf("%w: reconnect to NATS: %v", envmgr.ErrUnavailable, err)
	}
	s.mu.Lock()
	s.owned = append(s.owned, fresh)
	s.mu.Unlock()
	if err := s.attach(ctx, fresh); err != nil {
		fresh.Close()
		return nil, nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.js, s.kv, nil
}

// Healthy reports whether the store can be reached now: the connection is
// up and JetStream answers.
func (s *Store) Healthy(ctx context.Context) error {
	_, kv, err := s.handles(ctx)
	if err != nil {
		return err
	}
	s.mu.Lock()
	status := s.nc.Status()
	s.mu.Unlock()
	if status != nats.CONNECTED {
		return fmt.Errorf("%w: NATS connection is %s", envmgr.ErrUnavailable, status)
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := kv.Status(ctx); err != nil {
		return fmt.Errorf("%w: key-value bucket: %v", envmgr.ErrUnavailable, err)
	}
	return nil
}

// Close drains the connections the store made itself.
func (s *Store) Close() {
	s.mu.Lock()
	owned := s.owned
	s.owned = nil
	s.mu.Unlock()
	for _, nc := range owned {
		_ = nc.Drain()
	}
}

// unavailable marks errors that mean the bus cannot be reached, so that the
// API answers 503 rather than 500.
func unavailable(err error) error {
	switch {
	case errors.Is(err, nats.ErrConnectionClosed), errors.Is(err, nats.ErrTimeout), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, nats.ErrNoResponders), errors.Is(err, jetstream.ErrNoStreamResponse), errors.Is(err, nats.ErrConnectionReconnecting),
		errors.Is(err, nats.ErrDisconnected), errors.Is(err, jetstream.ErrJetStreamNotEnabled):
		return fmt.Errorf("%w: %w", envmgr.ErrUnavailable, err)
	}
	return err
}

// key checks a name before it becomes a key or a subject: the API checks
// names at its boundary, and this is the last line, so that no caller can
// send the server a subject it would close the connection over.
func key(name string) error {
	if err := proto.CheckToken(name); err != nil || len(name) > maxKey {
		return fmt.Errorf("%w: environment name is not a valid key", envmgr.ErrInvalid)
	}
	return nil
}

// maxKey is far above any valid environment name and far below NATS's
// control-line limit.
const maxKey = 128

func (s *Store) Create(ctx context.Context, e envmgr.Environment) (uint64, error) {
	if err := key(e.Name); err != nil {
		return 0, err
	}
	_, kv, err := s.handles(ctx)
	if err != nil {
		return 0, err
	}
	b, err := json.Marshal(e)
	if err != nil {
		return 0, err
	}
	rev, err := kv.Create(ctx, e.Name, b)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return 0, fmt.Errorf("%w: %s", envmgr.ErrExists, e.Name)
	}
	if err != nil {
		return 0, fmt.Errorf("create %s: %w", e.Name, unavailable(err))
	}
	return rev, nil
}

func (s *Store) Get(ctx context.Context, name string) (envmgr.Environment, uint64, error) {
	if err := key(name); err != nil {
		return envmgr.Environment{}, 0, err
	}
	_, kv, err := s.handles(ctx)
	if err != nil {
		return envmgr.Environment{}, 0, err
	}
	entry, err := kv.Get(ctx, name)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return envmgr.Environment{}, 0, fmt.Errorf("%w: %s", envmgr.ErrNotFound, name)
	}
	if err != nil {
		return envmgr.Environment{}, 0, fmt.Errorf("get %s: %w", name, unavailable(err))
	}
	var e envmgr.Environment
	if err := json.Unmarshal(entry.Value(), &e); err != nil {
		return envmgr.Environment{}, 0, fmt.Errorf("decode %s: %w", name, err)
	}
	return e, entry.Revision(), nil
}

func (s *Store) Update(ctx context.Context, e envmgr.Environment, rev uint64) (uint64, error) {
	if err := key(e.Name); err != nil {
		return 0, err
	}
	_, kv, err := s.handles(ctx)
	if err != nil {
		return 0, err
	}
	b, err := json.Marshal(e)
	if err != nil {
		return 0, err
	}
	nrev, err := kv.Update(ctx, e.Name, b, rev)
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return 0, fmt.Errorf("%w: %s (read at revision %d)", envmgr.ErrConflict, e.Name, rev)
	}
	if err != nil {
		return 0, fmt.Errorf("update %s: %w", e.Name, unavailable(err))
	}
	return nrev, nil
}

func (s *Store) List(ctx context.Context) ([]envmgr.Environment, error) {
	_, kv, err := s.handles(ctx)
	if err != nil {
		return nil, err
	}
	w, err := kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("list: %w", unavailable(err))
	}
	defer w.Stop()
	var out []envmgr.Environment
	for entry := range w.Updates() {
		if entry == nil {
			return out, nil // the initial values are complete
		}
		var e envmgr.Environment
		if err := json.Unmarshal(entry.Value(), &e); err != nil {
			return nil, fmt.Errorf("decode %s: %w", entry.Key(), err)
		}
		out = append(out, e)
	}
	return nil, fmt.Errorf("list: %w", unavailable(ctx.Err()))
}

func (s *Store) History(ctx context.Context, name string) ([]envmgr.Environment, error) {
	if err := key(name); err != nil {
		return nil, err
	}
	_, kv, err := s.handles(ctx)
	if err != nil {
		return nil, err
	}
	entries, err := kv.History(ctx, name)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, fmt.Errorf("%w: %s", envmgr.ErrNotFound, name)
	}
	if err != nil {
		return nil, fmt.Errorf("history %s: %w", name, unavailable(err))
	}
	out := make([]envmgr.Environment, 0, len(entries))
	for _, entry := range entries {
		var e envmgr.Environment
		if err := json.Unmarshal(entry.Value(), &e); err != nil {
			return nil, fmt.Errorf("decode %s: %w", name, err)
		}
		out = append(out, e)
	}
	return out, nil
}

// Watch sends the current environments, then every change, until ctx
// ends. It outlives the connection: when the watch breaks (the server closed
// the connection, or the watcher fell behind), it is opened again and the
// current values are sent again, which the reconciler treats like any change.
func (s *Store) Watch(ctx context.Context) (<-chan envmgr.Environment, error) {
	w, err := s.watch(ctx)
	if err != nil {
		return nil, err
	}
	out := make(chan envmgr.Environment, 64)
	go func() {
		defer close(out)
		for {
			s.pump(ctx, w, out)
			w.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-time.After(redialEvery):
				}
				if w, err = s.watch(ctx); err == nil {
					break
				}
			}
		}
	}()
	return out, nil
}

func (s *Store) watch(ctx context.Context) (jetstream.KeyWatcher, error) {
	_, kv, err := s.handles(ctx)
	if err != nil {
		return nil, err
	}
	w, err := kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("watch: %w", unavailable(err))
	}
	return w, nil
}

// pump forwards w's values to out until ctx ends or the watch breaks.
func (s *Store) pump(ctx context.Context, w jetstream.KeyWatcher, out chan<- envmgr.Environment) {
	// nats.go does not close a watcher's channel when the connection closes;
	// a slow check of the connection notices it.
	check := time.NewTicker(redialEvery)
	defer check.Stop()
	s.mu.Lock()
	nc := s.nc
	s.mu.Unlock()
	for {
		select {
		case <-ctx.Done():
			return
		case <-check.C:
			if nc.IsClosed() {
				return
			}
		case entry, ok := <-w.Updates():
			if !ok {
				return
			}
			if entry == nil {
				continue // end of the initial values
			}
			var e envmgr.Environment
			if json.Unmarshal(entry.Value(), &e) != nil {
				continue // not ours to interpret; a newer manager may have written it
			}
			select {
			case out <- e:
			case <-ctx.Done():
				return
			}
		}
	}
}

func (s *Store) AppendAudit(ctx context.Context, r envmgr.AuditRecord) error {
	if r.Env != envmgr.GlobalAudit {
		if err := key(r.Env); err != nil {
			return err
		}
	}
	js, _, err := s.handles(ctx)
	if err != nil {
		return err
	}
	if r.At.IsZero() {
		r.At = time.Now().UTC()
	}
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if _, err := js.Publish(ctx, auditSubject+r.Env, b); err != nil {
		return fmt.Errorf("audit %s: %w", r.Env, unavailable(err))
	}
	return nil
}

func (s *Store) Audit(ctx context.Context, name string) ([]envmgr.AuditRecord, error) {
	if name != envmgr.GlobalAudit {
		if err := key(name); err != nil {
			return nil, err
		}
	}
	js, _, err := s.handles(ctx)
	if err != nil {
		return nil, err
	}
	subj := auditSubject + name
	st, err := js.Stream(ctx, auditStream)
	if err != nil {
		return nil, fmt.Errorf("audit %s: %w", name, unavailable(err))
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(subj))
	if err != nil {
		return nil, fmt.Errorf("audit %s: %w", name, err)
	}
	n := int(info.State.Subjects[subj])
	if n == 0 {
		return nil, nil
	}
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subj}})
	if err != nil {
		return nil, fmt.Errorf("audit %s: %w", name, err)
	}
	out := make([]envmgr.AuditRecord, 0, n)
	for len(out) < n {
		batch, err := cons.Fetch(min(n-len(out), 256), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return nil, fmt.Errorf("audit %s: %w", name, err)
		}
		got := 0
		for msg := range batch.Messages() {
			var r envmgr.AuditRecord
			if err := json.Unmarshal(msg.Data(), &r); err != nil {
				return nil, fmt.Errorf("decode audit %s: %w", name, err)
			}
			out = append(out, r)
			got++
		}
		if err := batch.Error(); err != nil {
			return nil, fmt.Errorf("audit %s: %w", name, err)
		}
		if got == 0 {
			return nil, fmt.Errorf("audit %s: %d of %d records arrived", name, len(out), n)
		}
	}
	return out, nil
}
