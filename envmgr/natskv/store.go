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
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/paddockhq/paddock/envmgr"
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
}

// Store implements envmgr.Store. Safe for concurrent use.
type Store struct {
	js jetstream.JetStream
	kv jetstream.KeyValue
}

var _ envmgr.Store = (*Store)(nil)

// Open creates (or opens) the bucket and the audit stream.
func Open(ctx context.Context, nc *nats.Conn, o Options) (*Store, error) {
	if o.Replicas <= 0 {
		o.Replicas = 1
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: bucket, History: history, Replicas: o.Replicas,
		Description: "paddock sandbox environments, one key per environment",
	})
	if err != nil {
		return nil, fmt.Errorf("open key-value bucket %s: %w", bucket, err)
	}
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: auditStream, Subjects: []string{auditSubject + ">"}, Replicas: o.Replicas,
		Storage: jetstream.FileStorage, Description: "paddock environment audit log",
	}); err != nil {
		return nil, fmt.Errorf("open audit stream: %w", err)
	}
	return &Store{js: js, kv: kv}, nil
}

func (s *Store) Create(ctx context.Context, e envmgr.Environment) (uint64, error) {
	b, err := json.Marshal(e)
	if err != nil {
		return 0, err
	}
	rev, err := s.kv.Create(ctx, e.Name, b)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return 0, fmt.Errorf("%w: %s", envmgr.ErrExists, e.Name)
	}
	if err != nil {
		return 0, fmt.Errorf("create %s: %w", e.Name, err)
	}
	return rev, nil
}

func (s *Store) Get(ctx context.Context, name string) (envmgr.Environment, uint64, error) {
	entry, err := s.kv.Get(ctx, name)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return envmgr.Environment{}, 0, fmt.Errorf("%w: %s", envmgr.ErrNotFound, name)
	}
	if err != nil {
		return envmgr.Environment{}, 0, fmt.Errorf("get %s: %w", name, err)
	}
	var e envmgr.Environment
	if err := json.Unmarshal(entry.Value(), &e); err != nil {
		return envmgr.Environment{}, 0, fmt.Errorf("decode %s: %w", name, err)
	}
	return e, entry.Revision(), nil
}

func (s *Store) Update(ctx context.Context, e envmgr.Environment, rev uint64) (uint64, error) {
	b, err := json.Marshal(e)
	if err != nil {
		return 0, err
	}
	nrev, err := s.kv.Update(ctx, e.Name, b, rev)
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return 0, fmt.Errorf("%w: %s (read at revision %d)", envmgr.ErrConflict, e.Name, rev)
	}
	if err != nil {
		return 0, fmt.Errorf("update %s: %w", e.Name, err)
	}
	return nrev, nil
}

func (s *Store) List(ctx context.Context) ([]envmgr.Environment, error) {
	w, err := s.kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("list: %w", err)
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
	return nil, fmt.Errorf("list: %w", ctx.Err())
}

func (s *Store) History(ctx context.Context, name string) ([]envmgr.Environment, error) {
	entries, err := s.kv.History(ctx, name)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, fmt.Errorf("%w: %s", envmgr.ErrNotFound, name)
	}
	if err != nil {
		return nil, fmt.Errorf("history %s: %w", name, err)
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

func (s *Store) Watch(ctx context.Context) (<-chan envmgr.Environment, error) {
	w, err := s.kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("watch: %w", err)
	}
	out := make(chan envmgr.Environment, 64)
	go func() {
		defer close(out)
		defer w.Stop()
		for {
			select {
			case <-ctx.Done():
				return
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
	}()
	return out, nil
}

func (s *Store) AppendAudit(ctx context.Context, r envmgr.AuditRecord) error {
	if r.At.IsZero() {
		r.At = time.Now().UTC()
	}
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if _, err := s.js.Publish(ctx, auditSubject+r.Env, b); err != nil {
		return fmt.Errorf("audit %s: %w", r.Env, err)
	}
	return nil
}

func (s *Store) Audit(ctx context.Context, name string) ([]envmgr.AuditRecord, error) {
	subj := auditSubject + name
	st, err := s.js.Stream(ctx, auditStream)
	if err != nil {
		return nil, fmt.Errorf("audit %s: %w", name, err)
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
