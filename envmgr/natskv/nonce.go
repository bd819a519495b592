package natskv

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// nonceBucket remembers signed requests (Slack's, GitHub's deliveries) for
// NonceTTL, so that a request replayed within its validity window is
// refused by every replica, not only by the one that saw it first.
const (
	nonceBucket = "paddock_nonces"
	// NonceTTL outlives the five minutes a signed request is valid for, in
	// either direction of clock skew.
	NonceTTL = 11 * time.Minute
)

// ClaimNonce records key (a hex digest, [0-9a-f]+) and reports whether it
// was new: of two replicas claiming one key, exactly one gets true.
func (s *Store) ClaimNonce(ctx context.Context, key string) (bool, error) {
	if len(key) == 0 || len(key) > maxKey {
		return false, fmt.Errorf("nonce: bad key")
	}
	for _, c := range key {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false, fmt.Errorf("nonce: key must be lower-case hex")
		}
	}
	js, _, err := s.handles(ctx)
	if err != nil {
		return false, err
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: nonceBucket, TTL: NonceTTL, Replicas: s.o.Replicas,
		Description: "signed requests seen recently (replay guard)"})
	if err != nil {
		return false, fmt.Errorf("open nonce bucket: %w", unavailable(err))
	}
	if _, err := kv.Create(ctx, key, nil); err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) {
			return false, nil
		}
		return false, fmt.Errorf("claim nonce: %w", unavailable(err))
	}
	return true, nil
}
