// Package awssecrets keeps an environment's secrets in AWS Secrets Manager:
// its API keys under /dev-envs/<env>/, and an exchange configuration that
// references sandbox exchange keys under /sandbox/exchanges/<venue>/ only.
//
// The guard is in code, before any AWS call: this package refuses to read,
// write, delete or reference any name outside /sandbox/ and the
// environment's own /dev-envs/<env>/, so a bad spec or a bug cannot route a
// production key (/prod/...) into a sandbox, whatever IAM allows. Values are
// never logged; errors and logs carry names only.
package awssecrets

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/paddockhq/paddock/proto"
)

// ErrForbidden is returned for any name outside /sandbox/ and
// /dev-envs/<env>/, before AWS is called.
var ErrForbidden = errors.New("awssecrets: secret outside /sandbox/ and the environment's /dev-envs/<env>/")

// Names of an environment's secrets.
func Prefix(env string) string         { return "/dev-envs/" + env + "/" }
func APIKeyName(env string) string     { return Prefix(env) + "env-api-key" }
func AdminKeyName(env string) string   { return Prefix(env) + "admin-api-key" }
func ExchangeConfig(env string) string { return Prefix(env) + "exchange-config" }
func NATSCredsName(env string) string  { return Prefix(env) + "nats-creds" }

// NATSUsersName lists the public keys of NATS users an extension replaced,
// so that destroy revokes every user the environment had.
func NATSUsersName(env string) string { return Prefix(env) + "nats-users" }

// SandboxKeyName is where a venue's sandbox exchange key lives; the
// environment's exchange configuration references it, never copies it.
func SandboxKeyName(venue, part string) string { return "/sandbox/exchanges/" + venue + "/" + part }

// Guard reports whether env may use the secret name: it must be clean (no
// "..", no "//", no trailing slash) and under /sandbox/ or /dev-envs/<env>/.
func Guard(env, name string) error {
	if proto.CheckToken(env) != nil {
		return fmt.Errorf("%w: invalid environment name %q", ErrForbidden, env)
	}
	if name == "" || path.Clean(name) != name || strings.Contains(name, "//") || !strings.HasPrefix(name, "/") {
		return fmt.Errorf("%w: %q is not a clean absolute name", ErrForbidden, name)
	}
	if strings.HasPrefix(name, "/sandbox/") || strings.HasPrefix(name, Prefix(env)) {
		return nil
	}
	return fmt.Errorf("%w: %q (environment %s)", ErrForbidden, name, env)
}

// API is the part of the Secrets Manager client used here;
// *secretsmanager.Client has it.
type API interface {
	CreateSecret(ctx context.Context, in *secretsmanager.CreateSecretInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.CreateSecretOutput, error)
	PutSecretValue(ctx context.Context, in *secretsmanager.PutSecretValueInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.PutSecretValueOutput, error)
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
	DeleteSecret(ctx context.Context, in *secretsmanager.DeleteSecretInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.DeleteSecretOutput, error)
	DescribeSecret(ctx context.Context, in *secretsmanager.DescribeSecretInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error)
	RestoreSecret(ctx context.Context, in *secretsmanager.RestoreSecretInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.RestoreSecretOutput, error)
	ListSecrets(ctx context.Context, in *secretsmanager.ListSecretsInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.ListSecretsOutput, error)
}

// Secret is one environment secret as listed.
type Secret struct {
	Name    string
	Env     string // "" when the name is not /dev-envs/<env>/<part>
	Created time.Time
}

// List lists the secrets under /dev-envs/ (not those scheduled for
// deletion).
func (s *Store) List(ctx context.Context) ([]Secret, error) {
	var out []Secret
	p := secretsmanager.NewListSecretsPaginator(s.api, &secretsmanager.ListSecretsInput{
		Filters: []smtypes.Filter{{Key: smtypes.FilterNameStringTypeName, Values: []string{"/dev-envs/"}}}})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list secrets: %w", err)
		}
		for _, e := range page.SecretList {
			name := aws.ToString(e.Name)
			rest, ok := strings.CutPrefix(name, "/dev-envs/")
			if !ok || e.DeletedDate != nil {
				continue // the name filter matches a prefix anywhere in some emulators
			}
			sec := Secret{Name: name, Created: aws.ToTime(e.CreatedDate)}
			if env, part, ok := strings.Cut(rest, "/"); ok && part != "" && Guard(env, name) == nil {
				sec.Env = env
			}
			out = append(out, sec)
		}
	}
	return out, nil
}

// DeleteSecret deletes one secret under /dev-envs/ (the orphan sweeper's
// deletion), with the configured recovery window; one already gone is not
// an error.
func (s *Store) DeleteSecret(ctx context.Context, name string) error {
	if !strings.HasPrefix(name, "/dev-envs/") {
		return fmt.Errorf("%w: %q is not an environment secret", ErrForbidden, name)
	}
	in := &secretsmanager.DeleteSecretInput{SecretId: aws.String(name)}
	if s.recovery == 0 {
		in.ForceDeleteWithoutRecovery = aws.Bool(true)
	} else {
		in.RecoveryWindowInDays = aws.Int64(s.recovery)
	}
	_, err := s.api.DeleteSecret(ctx, in)
	var missing *smtypes.ResourceNotFoundException
	if err != nil && !errors.As(err, &missing) {
		return fmt.Errorf("delete secret %s: %w", name, err)
	}
	return nil
}

// Store manages environments' secrets. Safe for concurrent use.
type Store struct {
	api      API
	recovery int64 // days; 0 deletes at once (no recovery window)
	log      *slog.Logger
}

// New wraps a Secrets Manager client. recoveryDays is the window in which a
// deleted secret can be restored (7-30), or 0 to delete at once.
func New(api API, recoveryDays int, log *slog.Logger) (*Store, error) {
	if recoveryDays != 0 && (recoveryDays < 7 || recoveryDays > 30) {
		return nil, fmt.Errorf("awssecrets: recovery window %d days: want 0 or 7-30", recoveryDays)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Store{api: api, recovery: int64(recoveryDays), log: log.With("component", "secrets")}, nil
}

// NewClient builds a Secrets Manager client from an AWS configuration
// (config.LoadDefaultConfig: the standard chain of environment, shared files
// and instance role), with an optional endpoint override for an emulator.
func NewClient(cfg aws.Config, endpoint string) *secretsmanager.Client {
	return secretsmanager.NewFromConfig(cfg, func(o *secretsmanager.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
	})
}

// Keys are the references (names) of an environment's secrets.
type Keys struct {
	APIKey, AdminKey, ExchangeConfig string
}

// ExchangeConfigDoc is the exchange configuration's content: per venue, the
// names of its sandbox key secrets.
type ExchangeConfigDoc struct {
	Venues map[string]VenueKeys `json:"venues"`
}

// VenueKeys references a venue's sandbox key pair.
type VenueKeys struct {
	APIKeySecret    string `json:"api_key_secret"`
	APISecretSecret string `json:"api_secret_secret"`
}

// Provision creates the environment's API key, admin key and exchange
// configuration (idempotently: existing keys are kept, the configuration is
// rewritten). venues are the feed's venue names from the spec.
func (s *Store) Provision(ctx context.Context, env string, venues []string) (Keys, error) {
	k := Keys{APIKey: APIKeyName(env), AdminKey: AdminKeyName(env), ExchangeConfig: ExchangeConfig(env)}
	doc := ExchangeConfigDoc{Venues: map[string]VenueKeys{}}
	for _, v := range venues {
		if proto.CheckToken(v) != nil {
			return k, fmt.Errorf("awssecrets: invalid venue %q", v)
		}
		vk := VenueKeys{APIKeySecret: SandboxKeyName(v, "api-key"), APISecretSecret: SandboxKeyName(v, "api-secret")}
		for _, ref := range []string{vk.APIKeySecret, vk.APISecretSecret} {
			if err := Guard(env, ref); err != nil {
				return k, err
			}
		}
		doc.Venues[v] = vk
	}
	for _, name := range []string{k.APIKey, k.AdminKey} {
		if err := s.createKey(ctx, env, name); err != nil {
			return k, err
		}
	}
	raw, err := json.Marshal(doc)
	if err != nil {
		return k, err
	}
	if err := s.Put(ctx, env, k.ExchangeConfig, string(raw)); err != nil {
		return k, err
	}
	return k, nil
}

func (s *Store) createKey(ctx context.Context, env, name string) error {
	if err := Guard(env, name); err != nil {
		return err
	}
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return err
	}
	key := hex.EncodeToString(b)
	_, err := s.api.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name),
		SecretString: aws.String(key), Description: aws.String("paddock environment " + env),
		Tags: tags(env)})
	if taken(err) {
		restored, err := s.restoreIfDeleted(ctx, name)
		if err != nil || !restored {
			return err // kept: a re-provision does not rotate a developer's key
		}
		// Back from a destroyed environment's recovery window: a new
		// environment gets a new key, never the old one.
		if _, err := s.api.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(name), SecretString: aws.String(key)}); err != nil {
			return fmt.Errorf("rotate restored secret %s: %w", name, err)
		}
		s.log.Info("secret restored from its recovery window with a new value", "env", env, "name", name)
		return nil
	}
	if err != nil {
		return fmt.Errorf("create secret %s: %w", name, err)
	}
	s.log.Info("secret created", "env", env, "name", name)
	return nil
}

// taken reports whether CreateSecret failed because the name exists, live
// or scheduled for deletion (AWS answers the latter with
// InvalidRequestException).
func taken(err error) bool {
	var exists *smtypes.ResourceExistsException
	var invalid *smtypes.InvalidRequestException
	return errors.As(err, &exists) || errors.As(err, &invalid)
}

// restoreIfDeleted restores a secret that is scheduled for deletion (an
// environment destroyed with a recovery window and created again under the
// same name) and reports whether it had to.
func (s *Store) restoreIfDeleted(ctx context.Context, name string) (bool, error) {
	d, err := s.api.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(name)})
	if err != nil {
		return false, fmt.Errorf("describe secret %s: %w", name, err)
	}
	if d.DeletedDate == nil {
		return false, nil
	}
	if _, err := s.api.RestoreSecret(ctx, &secretsmanager.RestoreSecretInput{SecretId: aws.String(name)}); err != nil {
		return false, fmt.Errorf("restore secret %s: %w", name, err)
	}
	return true, nil
}

func tags(env string) []smtypes.Tag {
	return []smtypes.Tag{{Key: aws.String("EnvName"), Value: aws.String(env)}, {Key: aws.String("AutoDestroy"), Value: aws.String("true")}}
}

// Put writes a secret value (creating the secret if needed).
func (s *Store) Put(ctx context.Context, env, name, value string) error {
	if err := Guard(env, name); err != nil {
		return err
	}
	if strings.HasPrefix(name, "/sandbox/") {
		return fmt.Errorf("%w: environments only read /sandbox/ secrets: %q", ErrForbidden, name)
	}
	_, err := s.api.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(value),
		Tags: tags(env)})
	if taken(err) {
		if _, err = s.restoreIfDeleted(ctx, name); err == nil {
			_, err = s.api.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(name), SecretString: aws.String(value)})
		}
	}
	if err != nil {
		return fmt.Errorf("put secret %s: %w", name, err)
	}
	return nil
}

// Get reads a secret value.
func (s *Store) Get(ctx context.Context, env, name string) (string, error) {
	if err := Guard(env, name); err != nil {
		return "", err
	}
	out, err := s.api.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(name)})
	if err != nil {
		return "", fmt.Errorf("get secret %s: %w", name, err)
	}
	return aws.ToString(out.SecretString), nil
}

// Destroy deletes the environment's secrets, with the configured recovery
// window. Secrets already gone are not an error.
func (s *Store) Destroy(ctx context.Context, env string) error {
	for _, name := range []string{APIKeyName(env), AdminKeyName(env), ExchangeConfig(env), NATSCredsName(env), NATSUsersName(env)} {
		if err := Guard(env, name); err != nil {
			return err
		}
		in := &secretsmanager.DeleteSecretInput{SecretId: aws.String(name)}
		if s.recovery == 0 {
			in.ForceDeleteWithoutRecovery = aws.Bool(true)
		} else {
			in.RecoveryWindowInDays = aws.Int64(s.recovery)
		}
		_, err := s.api.DeleteSecret(ctx, in)
		var missing *smtypes.ResourceNotFoundException
		if err != nil && !errors.As(err, &missing) {
			return fmt.Errorf("delete secret %s: %w", name, err)
		}
	}
	s.log.Info("secrets deleted", "env", env, "recovery_days", s.recovery)
	return nil
}
