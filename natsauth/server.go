package natsauth

import (
	"github.com/paddockhq/paddock/internal/embednats"
)

// StartServer starts an embedded NATS server in operator mode, trusting the
// authority in dir (created on first use), after writing the services'
// credentials there (FeedCredsFile, ManagerCredsFile, ...). The caller owns
// the server and shuts it down after every component using it has drained.
func StartServer(dir string, eo embednats.Options) (*embednats.Server, error) {
	auth, err := LoadOrCreate(dir)
	if err != nil {
		return nil, err
	}
	if err := auth.WriteServiceCreds(); err != nil {
		return nil, err
	}
	sc, err := auth.Server()
	if err != nil {
		return nil, err
	}
	eo.Operator = &embednats.Operator{Claims: sc.Operator, SystemAccount: sc.SystemAccount, Accounts: sc.Accounts, ResolverDir: sc.ResolverDir}
	return embednats.Start(eo)
}
