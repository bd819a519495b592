package envmgr

import "context"

// Store keeps environments and their audit log. Every write is checked
// against the revision the caller read (optimistic concurrency): of two
// concurrent writers of one environment exactly one wins, and the other
// gets ErrConflict. Implementations are safe for concurrent use.
type Store interface {
	// Create stores a new environment; ErrExists if the name is taken.
	Create(ctx context.Context, e Environment) (rev uint64, err error)
	// Get returns an environment and the revision to pass to Update.
	Get(ctx context.Context, name string) (Environment, uint64, error)
	// Update replaces an environment if it is still at rev; ErrConflict if not.
	Update(ctx context.Context, e Environment, rev uint64) (uint64, error)
	// List returns every environment, destroyed ones included.
	List(ctx context.Context) ([]Environment, error)
	// History returns the stored versions of an environment, oldest first.
	History(ctx context.Context, name string) ([]Environment, error)
	// Watch sends every change after the current state; the channel closes
	// when ctx ends. The first values are the current environments.
	Watch(ctx context.Context) (<-chan Environment, error)
	// Audit appends to and reads an environment's audit log.
	AppendAudit(ctx context.Context, r AuditRecord) error
	Audit(ctx context.Context, name string) ([]AuditRecord, error)
}
