package api

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/paddockhq/paddock/envmgr"
	"gopkg.in/yaml.v3"
)

// Token is one API token as stored: its holder, role and the SHA-256 of the
// secret. The secret itself is never stored.
type Token struct {
	Name   string `yaml:"name"`
	Role   string `yaml:"role"`   // developer | admin | integration
	SHA256 string `yaml:"sha256"` // hex of sha256(token)
}

// Tokens checks bearer tokens. Safe for concurrent use (read-only after
// construction).
type Tokens struct {
	byHash map[[32]byte]envmgr.Actor
}

var errUnauthenticated = errors.New("api: missing or unknown bearer token")

// HashToken returns the hex SHA-256 of a token, as stored in a tokens file.
func HashToken(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// NewTokens builds a checker from stored tokens.
func NewTokens(ts []Token) (*Tokens, error) {
	t := &Tokens{byHash: map[[32]byte]envmgr.Actor{}}
	for i, tok := range ts {
		if tok.Name == "" || (tok.Role != "developer" && tok.Role != "admin" && tok.Role != "integration") {
			return nil, fmt.Errorf("tokens[%d]: want a name and role developer, admin or integration", i)
		}
		raw, err := hex.DecodeString(tok.SHA256)
		if err != nil || len(raw) != 32 {
			return nil, fmt.Errorf("tokens[%d] (%s): sha256 must be 64 hex digits (paddock env token-hash prints it)", i, tok.Name)
		}
		var h [32]byte
		copy(h[:], raw)
		t.byHash[h] = envmgr.Actor{Name: tok.Name, Admin: tok.Role == "admin", Integration: tok.Role == "integration"}
	}
	return t, nil
}

// LoadTokens reads a tokens file: `tokens: [{name, role, sha256}]`.
func LoadTokens(path string) (*Tokens, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read tokens: %w", err)
	}
	var f struct {
		Tokens []Token `yaml:"tokens"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("parse tokens %s: %w", path, err)
	}
	return NewTokens(f.Tokens)
}

// actor authenticates a request. Tokens are looked up by their SHA-256, so
// lookup timing reveals nothing an attacker can steer toward the secret.
func (t *Tokens) actor(r *http.Request) (envmgr.Actor, error) {
	h := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || tok == "" {
		return envmgr.Actor{}, fmt.Errorf("%w: send Authorization: Bearer <token>", errUnauthenticated)
	}
	a, found := t.byHash[sha256.Sum256([]byte(tok))]
	if !found {
		return envmgr.Actor{}, errUnauthenticated
	}
	a.Via = "api"
	if c := r.Header.Get(ClientHeader); c == "cli" || c == "console" {
		a.Via = c
	}
	return a, nil
}

// ClientHeader names the channel a request comes through (cli, console;
// anything else is api), for the audit log.
const ClientHeader = "X-Paddock-Client"
