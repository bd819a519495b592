// Package natsauth is paddock's NATS authority in operator/JWT mode: an
// operator, a system account, and one PADDOCK account whose signing key the
// environment manager holds. It mints the users everything connects as: the
// feed (publish market data, answer snapshot requests), the manager, and one
// user per environment that may subscribe only to its declared instruments
// and publish only under env.<name>.>, and whose JWT expires at the
// environment's deadline. Destroying an environment revokes its user.
//
// The key material lives in a directory (seeds 0600). On the embedded server
// the account JWTs are preloaded into a directory resolver; on a cluster the
// same JWTs are pushed to the cluster's resolver (see README: production).
package natsauth

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
	"github.com/paddockhq/paddock/proto"
	"github.com/paddockhq/paddock/record"
	"github.com/paddockhq/paddock/venue"
)

// Authority holds the keys and the current account JWT. Safe for concurrent use.
type Authority struct {
	dir                               string
	operator, system, account, signer nkeys.KeyPair
	operatorJWT, systemJWT            string

	mu         sync.Mutex
	accountJWT string
}

// LoadOrCreate loads the authority from dir, creating keys the first time.
func LoadOrCreate(dir string) (*Authority, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	a := &Authority{dir: dir}
	var err error
	if a.operator, err = seed(dir, "operator.nk", nkeys.CreateOperator); err != nil {
		return nil, err
	}
	if a.system, err = seed(dir, "system.nk", nkeys.CreateAccount); err != nil {
		return nil, err
	}
	if a.account, err = seed(dir, "account.nk", nkeys.CreateAccount); err != nil {
		return nil, err
	}
	if a.signer, err = seed(dir, "account-signing.nk", nkeys.CreateAccount); err != nil {
		return nil, err
	}
	opPub, _ := a.operator.PublicKey()
	sysPub, _ := a.system.PublicKey()
	oc := jwt.NewOperatorClaims(opPub)
	oc.Name = "paddock"
	oc.SystemAccount = sysPub
	if a.operatorJWT, err = oc.Encode(a.operator); err != nil {
		return nil, err
	}
	sc := jwt.NewAccountClaims(sysPub)
	sc.Name = "SYS"
	if a.systemJWT, err = sc.Encode(a.operator); err != nil {
		return nil, err
	}
	// The JWTs a cluster's servers are configured with (README: production).
	for name, j := range map[string]string{"operator.jwt": a.operatorJWT, "system.jwt": a.systemJWT} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(j), 0o644); err != nil {
			return nil, err
		}
	}
	// The PADDOCK account keeps its revocations across restarts: reuse the
	// stored JWT when there is one.
	if raw, err := os.ReadFile(filepath.Join(dir, "account.jwt")); err == nil {
		a.accountJWT = string(raw)
		return a, nil
	}
	ac, err := a.accountClaims()
	if err != nil {
		return nil, err
	}
	return a, a.store(ac)
}

func seed(dir, name string, create func() (nkeys.KeyPair, error)) (nkeys.KeyPair, error) {
	path := filepath.Join(dir, name)
	if raw, err := os.ReadFile(path); err == nil {
		return nkeys.FromSeed(raw)
	}
	kp, err := create()
	if err != nil {
		return nil, err
	}
	s, _ := kp.Seed()
	if err := os.WriteFile(path, s, 0o600); err != nil {
		return nil, err
	}
	return kp, nil
}

// accountClaims returns the PADDOCK account's current claims.
func (a *Authority) accountClaims() (*jwt.AccountClaims, error) {
	if a.accountJWT != "" {
		return jwt.DecodeAccountClaims(a.accountJWT)
	}
	accPub, _ := a.account.PublicKey()
	signPub, _ := a.signer.PublicKey()
	ac := jwt.NewAccountClaims(accPub)
	ac.Name = "PADDOCK"
	ac.SigningKeys.Add(signPub)
	ac.Limits.JetStreamLimits = jwt.JetStreamLimits{MemoryStorage: -1, DiskStorage: -1, Streams: -1, Consumer: -1}
	return ac, nil
}

func (a *Authority) store(ac *jwt.AccountClaims) error {
	enc, err := ac.Encode(a.operator)
	if err != nil {
		return err
	}
	a.accountJWT = enc
	return os.WriteFile(filepath.Join(a.dir, "account.jwt"), []byte(enc), 0o600)
}

// Server is what an embedded server needs to trust this authority.
type Server struct {
	Operator      *jwt.OperatorClaims
	SystemAccount string
	Accounts      map[string]string // account public key -> JWT, to preload
	ResolverDir   string
}

// Server returns the embedded server's configuration.
func (a *Authority) Server() (Server, error) {
	oc, err := jwt.DecodeOperatorClaims(a.operatorJWT)
	if err != nil {
		return Server{}, err
	}
	sysPub, _ := a.system.PublicKey()
	accPub, _ := a.account.PublicKey()
	a.mu.Lock()
	defer a.mu.Unlock()
	return Server{Operator: oc, SystemAccount: sysPub, ResolverDir: filepath.Join(a.dir, "resolver"),
		Accounts: map[string]string{sysPub: a.systemJWT, accPub: a.accountJWT}}, nil
}

// User describes a user to mint.
type User struct {
	Name    string
	Pub     []string // subjects it may publish to (empty: any)
	Sub     []string // subjects it may subscribe to (empty: any)
	Respond bool     // may reply to requests it receives
	Expires time.Time
	System  bool // a user of the system account (pushes account updates)
}

// Creds mints a user and returns a .creds file's content and the user's
// public key (what Revoke takes).
func (a *Authority) Creds(u User) ([]byte, string, error) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		return nil, "", err
	}
	pub, _ := kp.PublicKey()
	uc := jwt.NewUserClaims(pub)
	uc.Name = u.Name
	uc.Pub.Allow.Add(u.Pub...)
	uc.Sub.Allow.Add(u.Sub...)
	if u.Respond {
		uc.Resp = &jwt.ResponsePermission{MaxMsgs: 1}
	}
	if !u.Expires.IsZero() {
		uc.Expires = u.Expires.Unix()
	}
	var signed string
	if u.System {
		signed, err = uc.Encode(a.system) // signed by the system account itself
	} else {
		accPub, _ := a.account.PublicKey()
		uc.IssuerAccount = accPub
		signed, err = uc.Encode(a.signer)
	}
	if err != nil {
		return nil, "", err
	}
	s, _ := kp.Seed()
	creds, err := jwt.FormatUserConfig(signed, s)
	return creds, pub, err
}

// InboxPrefix is the reply inbox prefix of an environment's connections:
// each environment gets its own, so none can read another's replies.
func InboxPrefix(env string) string { return "_INBOX_" + env }

// Instrument is a declared instrument (venue and symbol tokens).
type Instrument struct{ Venue, Symbol string }

// EnvUser is the user of one environment: subscribe to its instruments'
// market data and the health subjects, request snapshots of its
// instruments, publish under env.<name>.>, valid until expires.
func EnvUser(env string, instruments []Instrument, expires time.Time) (User, error) {
	return envUser(env, instruments, expires, false)
}

// ReplayPrefix is an environment's own replay namespace:
// replay.<env>.market.data.<venue>.<instrument>.<event> and the rest of
// what a feed publishes, delivered by the environment's replayer.
func ReplayPrefix(env string) string { return proto.ReplayNamespace(env) }

// ReplayEnvUser is EnvUser for an environment that replays recorded
// market data: it may also read the recordings (consumers of the MD_*
// streams, nothing that changes them) and use its own replay namespace,
// and no other environment's.
func ReplayEnvUser(env string, instruments []Instrument, expires time.Time) (User, error) {
	return envUser(env, instruments, expires, true)
}

func envUser(env string, instruments []Instrument, expires time.Time, replay bool) (User, error) {
	if err := proto.CheckToken(env); err != nil {
		return User{}, err
	}
	u := User{Name: "env-" + env, Expires: expires, Respond: true,
		Pub: []string{"env." + env + ".>", InboxPrefix(env) + ".>"},
		Sub: []string{proto.HealthPrefix + ".>", "env." + env + ".>", InboxPrefix(env) + ".>"}}
	if replay {
		ns := ReplayPrefix(env) + ".>"
		u.Pub = append(u.Pub, ns, "$JS.API.INFO")
		u.Sub = append(u.Sub, ns)
		seen := map[string]bool{}
		for _, in := range instruments {
			st := record.StreamName(in.Venue)
			if seen[st] {
				continue
			}
			seen[st] = true
			u.Pub = append(u.Pub, "$JS.API.STREAM.INFO."+st, "$JS.API.STREAM.MSG.GET."+st, "$JS.API.DIRECT.GET."+st, "$JS.API.DIRECT.GET."+st+".>",
				"$JS.API.CONSUMER.CREATE."+st, "$JS.API.CONSUMER.CREATE."+st+".>", "$JS.API.CONSUMER.MSG.NEXT."+st+".>",
				"$JS.API.CONSUMER.INFO."+st+".>", "$JS.API.CONSUMER.DELETE."+st+".>")
		}
	}
	for _, in := range instruments {
		data, err := proto.DataWildcard(in.Venue, in.Symbol)
		if err != nil {
			return User{}, err
		}
		snap, _ := proto.SnapshotSubject(in.Venue, in.Symbol)
		u.Sub = append(u.Sub, data)
		u.Pub = append(u.Pub, snap)
	}
	return u, nil
}

// FeedUser publishes market data and answers snapshot requests.
func FeedUser() User {
	// It records its own market data too: it reads market.data.> and
	// stores batches on recording.<venue> and their checkpoint markers on
	// checkpoints.<venue>.<instrument>.
	u := User{Name: "feed", Respond: true, Pub: []string{"market.>", "$JS.API.INFO", record.RecordingPrefix + ".>", record.CheckpointPrefix + ".>"},
		Sub: []string{proto.SnapshotPrefix + ".>", FeedInbox + ".>", proto.DataPrefix + ".>"}}
	// ... and, to record, creates the registry venues' recording streams
	// (named one by one: a wildcard would reach every stream, the
	// environment store's included).
	for _, v := range venue.All() {
		st := record.StreamName(v.Name)
		u.Pub = append(u.Pub, "$JS.API.STREAM.CREATE."+st, "$JS.API.STREAM.UPDATE."+st, "$JS.API.STREAM.INFO."+st,
			"$JS.API.STREAM.MSG.GET."+st, "$JS.API.DIRECT.GET."+st+".>")
	}
	// ... and, run as replicas, elects one recorder per venue through a
	// lease in its own key-value bucket (and watches it for handovers).
	kv := "KV_" + record.LeaseBucket
	u.Pub = append(u.Pub, "$JS.API.STREAM.CREATE."+kv, "$JS.API.STREAM.UPDATE."+kv, "$JS.API.STREAM.INFO."+kv,
		"$JS.API.STREAM.MSG.GET."+kv, "$JS.API.DIRECT.GET."+kv+".>", "$JS.API.CONSUMER.CREATE."+kv+".>",
		"$JS.API.CONSUMER.DELETE."+kv+".>", "$JS.API.CONSUMER.INFO."+kv+".>", "$KV."+record.LeaseBucket+".>")
	return u
}

// Inbox prefixes of the services that make requests. Nobody may subscribe
// to the default _INBOX.>: each user reads only its own inbox, so no user
// sees another's replies (the manager's carry every environment's record).
const (
	ManagerInbox  = "_INBOX_paddock_envmgr"
	ObserverInbox = "_INBOX_paddock_observer"
	FeedInbox     = "_INBOX_paddock_feed"
)

// ManagerUser is the environment manager: JetStream (its store, audit log
// and the pull-request integration's work queue), its own inbox, the nodes'
// heartbeats and the feed's health and snapshot subjects (what it asks the
// feed), and the environments' subjects. `paddock record` runs with it too:
// coverage, and imports stored on imported.<venue>.<instrument>.<day>.
func ManagerUser() User {
	return User{Name: "envmgr",
		Pub: []string{"$JS.API.>", "$JS.ACK.>", "$JS.FC.>", "$KV.>", "paddock.audit.>", "paddock.github.>", proto.SnapshotPrefix + ".>", "env.>",
			record.ImportedPrefix + ".>"},
		Sub: []string{ManagerInbox + ".>", "env.>", proto.HealthPrefix + ".>"}}
}

// SystemUser pushes account updates to the servers.
func SystemUser() User { return User{Name: "paddock-sys", System: true} }

// Revoke revokes a user from now on and pushes the updated account to the
// servers through nc, a system-account connection. The server closes the
// user's connections.
func (a *Authority) Revoke(ctx context.Context, nc *nats.Conn, userPub string) error {
	a.mu.Lock()
	ac, err := a.accountClaims()
	if err != nil {
		a.mu.Unlock()
		return err
	}
	ac.RevokeAt(userPub, time.Now().Add(time.Second)) // JWTs issued up to now (second resolution)
	if err := a.store(ac); err != nil {
		a.mu.Unlock()
		return err
	}
	enc := a.accountJWT
	a.mu.Unlock()
	return push(ctx, nc, enc)
}

// push sends an account JWT to every server's resolver.
func push(ctx context.Context, nc *nats.Conn, accountJWT string) error {
	msg, err := nc.RequestWithContext(ctx, "$SYS.REQ.CLAIMS.UPDATE", []byte(accountJWT))
	if err != nil {
		return fmt.Errorf("push account update: %w", err)
	}
	var resp struct {
		Error *struct {
			Code        int    `json:"code"`
			Description string `json:"description"`
		} `json:"error"`
	}
	if json.Unmarshal(msg.Data, &resp) == nil && resp.Error != nil {
		return fmt.Errorf("push account update: %d %s", resp.Error.Code, resp.Error.Description)
	}
	return nil
}

// ObserverUser may only read market data, health and the environments'
// public events (orders, fills, risk, node status), and request book
// snapshots with replies on its own inbox: for `paddock tap` and dashboards.
func ObserverUser() User {
	return User{Name: "observer", Sub: []string{proto.DataPrefix + ".>", proto.HealthPrefix + ".>", ObserverInbox + ".>", "env.*.orders", "env.*.fills", "env.*.risk", "env.*.node"},
		Pub: []string{proto.SnapshotPrefix + ".>"}}
}

// WriteCreds mints u into a .creds file (0600) and returns the user's
// public key.
func (a *Authority) WriteCreds(path string, u User) (string, error) {
	creds, pub, err := a.Creds(u)
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(path+".tmp", creds, 0o600); err != nil {
		return "", err
	}
	return pub, os.Rename(path+".tmp", path)
}

// Well-known creds files an authority directory holds once WriteServiceCreds
// has run.
const (
	FeedCredsFile     = "feed.creds"
	ManagerCredsFile  = "envmgr.creds"
	SystemCredsFile   = "system.creds"
	ObserverCredsFile = "observer.creds"
)

// WriteServiceCreds writes the feed's, the manager's, the system user's and
// the observer's credentials into the authority's directory.
func (a *Authority) WriteServiceCreds() error {
	for file, u := range map[string]User{FeedCredsFile: FeedUser(), ManagerCredsFile: ManagerUser(), SystemCredsFile: SystemUser(), ObserverCredsFile: ObserverUser()} {
		if _, err := a.WriteCreds(filepath.Join(a.dir, file), u); err != nil {
			return fmt.Errorf("write %s: %w", file, err)
		}
	}
	return nil
}

// Dir is the authority's directory.
func (a *Authority) Dir() string { return a.dir }

// Revoked reports whether userPub's credentials issued until now are
// revoked in the account.
func (a *Authority) Revoked(userPub string) (bool, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	ac, err := a.accountClaims()
	if err != nil {
		return false, err
	}
	_, ok := ac.Revocations[userPub]
	return ok, nil
}
