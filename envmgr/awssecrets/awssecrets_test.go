package awssecrets

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/paddockhq/paddock/internal/mototest"
)

// These tests run against moto's server, a real AWS API emulator, started
// here when moto_server is on PATH. moto does not enforce IAM, which is why
// the /prod/ guarantee lives in code (Guard) and is tested here without AWS.

// counting wraps the real client to count calls: the guard must refuse
// before any of them.
type counting struct {
	API
	calls atomic.Int64
}

func (c *counting) CreateSecret(ctx context.Context, in *secretsmanager.CreateSecretInput, o ...func(*secretsmanager.Options)) (*secretsmanager.CreateSecretOutput, error) {
	c.calls.Add(1)
	return c.API.CreateSecret(ctx, in, o...)
}
func (c *counting) PutSecretValue(ctx context.Context, in *secretsmanager.PutSecretValueInput, o ...func(*secretsmanager.Options)) (*secretsmanager.PutSecretValueOutput, error) {
	c.calls.Add(1)
	return c.API.PutSecretValue(ctx, in, o...)
}
func (c *counting) GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, o ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	c.calls.Add(1)
	return c.API.GetSecretValue(ctx, in, o...)
}
func (c *counting) DeleteSecret(ctx context.Context, in *secretsmanager.DeleteSecretInput, o ...func(*secretsmanager.Options)) (*secretsmanager.DeleteSecretOutput, error) {
	c.calls.Add(1)
	return c.API.DeleteSecret(ctx, in, o...)
}

func TestGuard(t *testing.T) {
	for _, c := range []struct {
		name string
		ok   bool
	}{
		{"/dev-envs/e1/env-api-key", true},
		{"/sandbox/exchanges/binance/api-key", true},
		{"/prod/exchanges/binance/api-key", false},
		{"/dev-envs/e2/env-api-key", false},
		{"/dev-envs/e1/../../prod/x", false},
		{"/sandbox/../prod/x", false},
		{"/dev-envs/e1//x", false},
		{"/dev-envs/e10/x", false},
		{"dev-envs/e1/x", false},
		{"/dev-envs/e1/", false},
		{"", false},
	} {
		if err := Guard("e1", c.name); (err == nil) != c.ok || (err != nil && !errors.Is(err, ErrForbidden)) {
			t.Errorf("Guard(e1, %q) = %v, want ok=%v", c.name, err, c.ok)
		}
	}
	if Guard("bad name", "/dev-envs/bad name/x") == nil {
		t.Error("invalid environment name accepted")
	}
}

func TestSecretsAgainstMoto(t *testing.T) {
	cfg, url := mototest.AWSConfig(t)
	ctx := t.Context()
	api := &counting{API: NewClient(cfg, url)}
	s, err := New(api, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := s.Provision(ctx, "e1", []string{"binance", "binance-perp"})
	if err != nil {
		t.Fatal(err)
	}
	key1, err := s.Get(ctx, "e1", keys.APIKey)
	if err != nil || len(key1) != 48 {
		t.Fatalf("api key %d chars, %v", len(key1), err)
	}
	admin, _ := s.Get(ctx, "e1", keys.AdminKey)
	if admin == key1 || admin == "" {
		t.Fatal("admin key must differ from the API key")
	}
	raw, err := s.Get(ctx, "e1", keys.ExchangeConfig)
	if err != nil {
		t.Fatal(err)
	}
	var doc ExchangeConfigDoc
	if err := json.Unmarshal([]byte(raw), &doc); err != nil || len(doc.Venues) != 2 {
		t.Fatalf("exchange config %s %v", raw, err)
	}
	for v, k := range doc.Venues {
		for _, ref := range []string{k.APIKeySecret, k.APISecretSecret} {
			if !strings.HasPrefix(ref, "/sandbox/exchanges/"+v+"/") {
				t.Fatalf("exchange config references %q", ref)
			}
		}
	}
	// A re-provision keeps the keys.
	if _, err := s.Provision(ctx, "e1", []string{"binance"}); err != nil {
		t.Fatal(err)
	}
	if again, _ := s.Get(ctx, "e1", keys.APIKey); again != key1 {
		t.Fatal("re-provision rotated the API key")
	}
	// Production and other environments are refused before any AWS call.
	before := api.calls.Load()
	for _, f := range []func() error{
		func() error { _, err := s.Get(ctx, "e1", "/prod/exchanges/binance/api-key"); return err },
		func() error { return s.Put(ctx, "e1", "/prod/x", "v") },
		func() error { return s.Put(ctx, "e1", "/sandbox/exchanges/binance/api-key", "v") },
		func() error { _, err := s.Get(ctx, "e1", "/dev-envs/e2/env-api-key"); return err },
		func() error { _, err := s.Provision(ctx, "e1", []string{"../prod"}); return err },
	} {
		if err := f(); err == nil {
			t.Fatal("a forbidden secret operation succeeded")
		}
	}
	if n := api.calls.Load() - before; n != 0 {
		t.Fatalf("%d AWS calls for forbidden names", n)
	}
	if err := s.Put(ctx, "e1", NATSCredsName("e1"), "-----BEGIN NATS USER JWT-----"); err != nil {
		t.Fatal(err)
	}
	if err := s.Destroy(ctx, "e1"); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{keys.APIKey, keys.AdminKey, keys.ExchangeConfig, NATSCredsName("e1")} {
		if _, err := s.Get(ctx, "e1", n); err == nil {
			t.Fatalf("%s still readable after destroy", n)
		}
	}
	if err := s.Destroy(ctx, "e1"); err != nil {
		t.Fatalf("destroying twice: %v", err)
	}
}

func TestRecoveryWindow(t *testing.T) {
	if _, err := New(nil, 3, nil); err == nil {
		t.Fatal("3-day window accepted")
	}
	cfg, url := mototest.AWSConfig(t)
	s, _ := New(NewClient(cfg, url), 7, nil)
	if _, err := s.Provision(t.Context(), "e3", nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(t.Context(), "e3", NATSCredsName("e3"), "creds-1"); err != nil {
		t.Fatal(err)
	}
	k1, err := s.Get(t.Context(), "e3", APIKeyName("e3"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Destroy(t.Context(), "e3"); err != nil {
		t.Fatal(err)
	}
	// Within the window the secret is scheduled for deletion: unreadable.
	if _, err := s.Get(t.Context(), "e3", APIKeyName("e3")); err == nil {
		t.Fatal("a secret scheduled for deletion was readable")
	}
	// An environment created again under the same name (a PR re-opened)
	// gets its secrets back from the window, with fresh keys: the destroyed
	// environment's key must not open the new one.
	if _, err := s.Provision(t.Context(), "e3", []string{"binance"}); err != nil {
		t.Fatalf("re-provision within the recovery window: %v", err)
	}
	if err := s.Put(t.Context(), "e3", NATSCredsName("e3"), "creds-2"); err != nil {
		t.Fatalf("put within the recovery window: %v", err)
	}
	k2, err := s.Get(t.Context(), "e3", APIKeyName("e3"))
	if err != nil || k2 == "" || k2 == k1 {
		t.Fatalf("re-provisioned key %q (was %q): %v", k2, k1, err)
	}
	if c, err := s.Get(t.Context(), "e3", NATSCredsName("e3")); err != nil || c != "creds-2" {
		t.Fatalf("restored credentials %q: %v", c, err)
	}
}
