package github

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/paddockhq/paddock/envmgr"
	"github.com/paddockhq/paddock/envmgr/natskv"
	"github.com/paddockhq/paddock/internal/embednats"
	"github.com/paddockhq/paddock/internal/natstest"
)

// FuzzWebhook: whatever a signed delivery holds, and under whatever event
// name, the handler answers with one of its documented codes and never
// panics; what it queues is JSON.
func FuzzWebhook(f *testing.F) {
	f.Add("pull_request", []byte(`{"action":"opened","repository":{"full_name":"o/r"},"pull_request":{"number":1}}`))
	f.Add("issue_comment", []byte(`{"action":"created","repository":{"full_name":"o/r"}}`))
	f.Add("ping", []byte(`{"zen":"x"}`))
	f.Add("push", []byte(`[]`))
	f.Add("pull_request", []byte(`{"repository":{"full_name":"O/R"}}`))
	ns := natstest.Server(f, embednats.Options{StoreDir: f.TempDir()})
	nc := natstest.Connect(f, ns.ClientURL())
	store, err := natskv.Open(f.Context(), nc, natskv.Options{})
	if err != nil {
		f.Fatal(err)
	}
	dir := f.TempDir()
	secret := []byte("fuzz-secret-0123456789")
	_ = os.WriteFile(filepath.Join(dir, "s"), secret, 0o600)
	_ = os.WriteFile(filepath.Join(dir, "t"), []byte("tok"), 0o600)
	i, err := New(f.Context(), Config{APIURL: "http://127.0.0.1:1/", WebhookSecretFile: filepath.Join(dir, "s"), TokenFile: filepath.Join(dir, "t"),
		Repos: []string{"o/r"}}, nc, envmgr.NewManager(store, nil, nil), store, 1, Options{SourceDir: dir})
	if err != nil {
		f.Fatal(err)
	}
	n := 0
	f.Fuzz(func(t *testing.T, event string, body []byte) {
		mac := hmac.New(sha256.New, secret)
		mac.Write(body)
		req := httptest.NewRequest("POST", "/v1/github/webhook", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-GitHub-Event", event)
		n++
		req.Header.Set("X-GitHub-Delivery", "fuzz-"+string(rune('a'+n%26))+hex.EncodeToString(mac.Sum(nil))[:8])
		req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
		w := httptest.NewRecorder()
		i.ServeHTTP(w, req)
		switch w.Code {
		case http.StatusOK, http.StatusAccepted, http.StatusBadRequest:
		default:
			t.Fatalf("%d for event %q body %q", w.Code, event, body)
		}
	})
}
