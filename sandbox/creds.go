package sandbox

import (
	"bytes"
	"os"
	"sync/atomic"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"
)

// credsReloader notices new NATS credentials in the node's creds file (an
// extension re-issues them: the local manager rewrites the file, an AWS
// instance's timer fetches them from Secrets Manager) and reconnects, so the
// connection carries the new JWT before the old one expires instead of
// being cut off at the original deadline. nats.UserCredentials reads the
// file on every connect. Owned by Node.Run.
type credsReloader struct {
	path    string
	nc      *nats.Conn
	last    []byte
	expires atomic.Int64 // unix seconds of the loaded JWT's expiry; 0: none
}

func newCredsReloader(path string, nc *nats.Conn) *credsReloader {
	r := &credsReloader{path: path, nc: nc}
	if raw, err := os.ReadFile(path); err == nil {
		r.last = raw
		r.expires.Store(jwtExpiry(raw))
	}
	return r
}

// check reloads when the file holds different, valid credentials; it
// reports whether it reconnected.
func (r *credsReloader) check() bool {
	raw, err := os.ReadFile(r.path)
	if err != nil || bytes.Equal(raw, r.last) {
		return false
	}
	exp := jwtExpiry(raw)
	if exp < 0 {
		return false // half-written or not credentials: keep the connection as is
	}
	r.last = raw
	r.expires.Store(exp)
	return r.nc.ForceReconnect() == nil
}

// expiresAt is the loaded credentials' expiry (zero when they have none).
func (r *credsReloader) expiresAt() time.Time {
	if s := r.expires.Load(); s > 0 {
		return time.Unix(s, 0).UTC()
	}
	return time.Time{}
}

// jwtExpiry is the expiry (unix seconds) of the user JWT in a creds file:
// 0 for none, -1 when the file holds no valid user JWT.
func jwtExpiry(raw []byte) int64 {
	tok, err := jwt.ParseDecoratedJWT(raw)
	if err != nil {
		return -1
	}
	uc, err := jwt.DecodeUserClaims(tok)
	if err != nil {
		return -1
	}
	return uc.Expires
}
