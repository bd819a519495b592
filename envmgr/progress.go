package envmgr

import (
	"sync"
	"sync/atomic"
	"time"
)

// ProgressEvent is one step of a provisioner's work on an environment (a
// Terraform resource being created, say), shown live by the events API and
// `paddock env up -wait`.
type ProgressEvent struct {
	Env      string `json:"env"`
	Op       string `json:"op"`   // init, plan, apply, destroy, ready (the wait for the node)
	Type     string `json:"type"` // the provisioner's event type
	Level    string `json:"level,omitempty"`
	Message  string `json:"message"`
	Resource string `json:"resource,omitempty"`
	Action   string `json:"action,omitempty"`
	// ElapsedMS is whole milliseconds: every number in the API is exact.
	ElapsedMS int64     `json:"elapsed_ms,omitempty"`
	Time      time.Time `json:"time"`
}

// ProgressHub fans progress events out to the API's watchers. Publishing
// never blocks: a watcher that falls 256 events behind misses the rest
// (counted in Dropped); progress is informational, the state stream is not
// affected. Safe for concurrent use.
type ProgressHub struct {
	mu      sync.Mutex
	subs    map[string]map[chan ProgressEvent]struct{}
	Dropped atomic.Uint64
}

// NewProgressHub creates an empty hub.
func NewProgressHub() *ProgressHub {
	return &ProgressHub{subs: map[string]map[chan ProgressEvent]struct{}{}}
}

// Publish sends ev to the watchers of ev.Env.
func (h *ProgressHub) Publish(ev ProgressEvent) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs[ev.Env] {
		select {
		case ch <- ev:
		default:
			h.Dropped.Add(1)
		}
	}
}

// Subscribe returns the events of one environment until cancel is called.
func (h *ProgressHub) Subscribe(env string) (<-chan ProgressEvent, func()) {
	ch := make(chan ProgressEvent, 256)
	h.mu.Lock()
	if h.subs[env] == nil {
		h.subs[env] = map[chan ProgressEvent]struct{}{}
	}
	h.subs[env][ch] = struct{}{}
	h.mu.Unlock()
	return ch, func() {
		h.mu.Lock()
		delete(h.subs[env], ch)
		if len(h.subs[env]) == 0 {
			delete(h.subs, env)
		}
		h.mu.Unlock()
	}
}
