package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/paddockhq/paddock/envmgr"
	"github.com/paddockhq/paddock/envmgr/natskv"
	"github.com/paddockhq/paddock/internal/embednats"
	"github.com/paddockhq/paddock/internal/natstest"
)

// FuzzRequest sends arbitrary requests (method, path, token, content type,
// body) through the API's routing, authentication and decoding to a real
// store on a real NATS server. No request gets a 500, every answer is JSON,
// no answer echoes more than a bounded part of a name, and the store's
// connection survives every one (the first wave's manager lost it for good
// to one long name).
func FuzzRequest(f *testing.F) {
	for _, s := range []struct{ method, path, token, ctype, body string }{
		{"POST", "/v1/environments", "alice-token", "application/json", `{"spec_yaml":` + jsonString(fmt.Sprintf(devEnv, "fz")) + `}`},
		{"POST", "/v1/environments", "alice-token", "application/json", `{"spec_yaml":"x","pr_number":9223372036854775807}`},
		{"GET", "/v1/environments/" + strings.Repeat("a", 4100), "", "", ""},
		{"GET", "/v1/environments/a.b", "alice-token", "", ""},
		{"POST", "/v1/environments/fz/extend", "alice-token", "application/json", `{"hours":9223372036854775807}`},
		{"POST", "/v1/environments/fz/extend", "alice-token", "text/plain", `{"hours":1}`},
		{"POST", "/v1/environments/fz/stop", "bob-token", "", ""},
		{"DELETE", "/v1/environments/fz", "admin-token", "", ""},
		{"GET", "/v1/environments/_global/audit", "admin-token", "", ""},
		{"GET", "/v1/environments/%E2%82%AC/audit", "admin-token", "", ""},
	} {
		f.Add(s.method, s.path, s.token, s.ctype, []byte(s.body))
	}
	ns := natstest.Server(f, embednats.Options{StoreDir: f.TempDir()})
	nc := natstest.Connect(f, ns.ClientURL())
	store, err := natskv.Open(f.Context(), nc, natskv.Options{})
	if err != nil {
		f.Fatal(err)
	}
	tokens, _ := NewTokens([]Token{
		{Name: "alice", Role: "developer", SHA256: HashToken("alice-token")},
		{Name: "bob", Role: "developer", SHA256: HashToken("bob-token")},
		{Name: "root", Role: "admin", SHA256: HashToken("admin-token")},
	})
	srv := New(envmgr.NewManager(store, nil, nil), store, tokens, ConnectInfo{}, nil, Options{Health: store})
	f.Fuzz(func(t *testing.T, method, path, token, ctype string, body []byte) {
		switch method {
		case "GET", "POST", "DELETE":
		default:
			method = "POST"
		}
		if strings.HasSuffix(path, "/events") {
			return // a stream: it answers until the client goes
		}
		req, err := http.NewRequest(method, "http://envmgr"+path, bytes.NewReader(body))
		if err != nil || !strings.HasPrefix(req.URL.Path, "/") {
			return
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, req)
		if w.Code >= 500 {
			t.Fatalf("%s %q: %d %s", method, path, w.Code, w.Body)
		}
		if ct := w.Header().Get("Content-Type"); strings.HasPrefix(ct, "application/json") && !json.Valid(w.Body.Bytes()) {
			t.Fatalf("%s %q: invalid JSON", method, path)
		}
		if w.Code >= 400 && w.Body.Len() > 1024 && !strings.Contains(w.Body.String(), "fields") {
			t.Fatalf("%s %q: a %d-byte error answer", method, path, w.Body.Len())
		}
		if nc.IsClosed() {
			t.Fatalf("%s %q closed the store's NATS connection", method, path)
		}
	})
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
