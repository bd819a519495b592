package natsauth

import (
	"context"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/paddockhq/paddock/envmgr/spec"
)

// Issuer is paddock's NATS-credential policy for environments, in one
// place: each node gets a user of its own (EnvUser: its declared
// instruments' market data, its own subjects, a private inbox) that expires
// at the environment's deadline, and users are revoked through the system
// account. Both provisioners take it. Safe for concurrent use.
type Issuer struct {
	auth *Authority
	sys  *nats.Conn // the system user's connection, for revocations
}

// NewIssuer issues users from a, revoking through sys (a connection as
// SystemUser).
func NewIssuer(a *Authority, sys *nats.Conn) *Issuer { return &Issuer{auth: a, sys: sys} }

// Issue mints credentials for environment env's node, declared by s,
// expiring at expires; it returns them, the user's public key (to revoke it
// later) and the inbox prefix the user may use.
func (i *Issuer) Issue(env string, s *spec.Spec, expires time.Time) (creds []byte, userPub, inbox string, err error) {
	var ins []Instrument
	for _, ex := range s.Exchanges {
		for _, in := range ex.Instruments {
			ins = append(ins, Instrument{Venue: ex.Venue, Symbol: in.Symbol})
		}
	}
	mint := EnvUser
	if s.MarketData.Mode == "replay" || s.MarketData.Mode == "both" {
		mint = ReplayEnvUser
	}
	u, err := mint(env, ins, expires)
	if err != nil {
		return nil, "", "", err
	}
	creds, userPub, err = i.auth.Creds(u)
	return creds, userPub, InboxPrefix(env), err
}

// Revoke revokes a user, so that its credentials no longer connect.
func (i *Issuer) Revoke(ctx context.Context, userPub string) error {
	return i.auth.Revoke(ctx, i.sys, userPub)
}

// Revoked reports whether a user's credentials were revoked (the orphan
// sweeper's question about users of destroyed environments).
func (i *Issuer) Revoked(userPub string) (bool, error) { return i.auth.Revoked(userPub) }
