package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/paddockhq/paddock/envmgr"
	"github.com/paddockhq/paddock/envmgr/spec"
	"github.com/paddockhq/paddock/envmgr/sweep"
)

// Client calls the API. Safe for concurrent use.
type Client struct {
	BaseURL string
	Token   string
	HTTP    *http.Client
	// Progress, when set, receives a provisioner's progress events during
	// Watch (Terraform resources being created, say).
	Progress func(envmgr.ProgressEvent)
	// Via names the channel for the audit log (cli, console); empty is api.
	Via string
}

// Update moves an environment to a new commit (integration and admin
// tokens). Moving to a commit is idempotent, so a 409 conflict (the
// reconciler wrote the record meanwhile) is retried a few times.
func (c *Client) Update(ctx context.Context, name string, b CreateBody) (envmgr.Environment, error) {
	var e envmgr.Environment
	var err error
	for range 10 {
		err = c.do(ctx, "POST", "/v1/environments/"+name+"/update", b, &e)
		var se *StatusError
		if !errors.As(err, &se) || se.Status != http.StatusConflict || se.Body.Code != "conflict" {
			return e, err
		}
	}
	return e, err
}

// Orphans is the sweeper's dry run (admins only).
func (c *Client) Orphans(ctx context.Context) (sweep.Report, error) {
	var rep sweep.Report
	return rep, c.do(ctx, "GET", "/v1/orphans", nil, &rep)
}

// CleanOrphans deletes the orphans past the grace period (admins only).
func (c *Client) CleanOrphans(ctx context.Context) (sweep.Report, error) {
	var rep sweep.Report
	return rep, c.do(ctx, "POST", "/v1/orphans/clean", nil, &rep)
}

// StatusError is a non-2xx response.
type StatusError struct {
	Status int
	Body   Error
}

func (e *StatusError) Error() string {
	msg := e.Body.Error
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	return fmt.Sprintf("%d %s: %s", e.Status, e.Body.Code, msg)
}

// do sends a request. A 409 "conflict" (the environment changed between
// the server's read and write, often by the reconciler) is retried a few
// times: the server re-reads and re-checks each time, so no update is lost.
func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	var err error
	for attempt := range 4 {
		if err = c.once(ctx, method, path, body, out); err == nil {
			return nil
		}
		var se *StatusError
		if !errors.As(err, &se) || se.Status != http.StatusConflict || se.Body.Code != "conflict" {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(25<<attempt) * time.Millisecond):
		}
	}
	return err
}

func (c *Client) once(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.BaseURL, "/")+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	req.Header.Set("Content-Type", "application/json")
	if c.Via != "" {
		req.Header.Set(ClientHeader, c.Via)
	}
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		se := &StatusError{Status: resp.StatusCode}
		_ = json.Unmarshal(raw, &se.Body)
		return se
	}
	if out != nil {
		return json.Unmarshal(raw, out)
	}
	return nil
}

// Create submits a .dev-env.yaml.
func (c *Client) Create(ctx context.Context, b CreateBody) (envmgr.Environment, error) {
	var e envmgr.Environment
	return e, c.do(ctx, "POST", "/v1/environments", b, &e)
}

// List returns the environments the token may see.
func (c *Client) List(ctx context.Context) ([]envmgr.Environment, error) {
	var out struct{ Environments []envmgr.Environment }
	return out.Environments, c.do(ctx, "GET", "/v1/environments", nil, &out)
}

// Get returns an environment and how to connect.
func (c *Client) Get(ctx context.Context, name string) (envmgr.Environment, ConnectInfo, error) {
	var out struct {
		Environment envmgr.Environment
		Connect     ConnectInfo
	}
	err := c.do(ctx, "GET", "/v1/environments/"+name, nil, &out)
	return out.Environment, out.Connect, err
}

// Audit returns an environment's audit log.
func (c *Client) Audit(ctx context.Context, name string) ([]envmgr.AuditRecord, error) {
	var out struct{ Audit []envmgr.AuditRecord }
	return out.Audit, c.do(ctx, "GET", "/v1/environments/"+name+"/audit", nil, &out)
}

// Action posts stop, start or extend, or deletes (action "down").
func (c *Client) Action(ctx context.Context, name, action string, hours int) (envmgr.Environment, error) {
	var e envmgr.Environment
	switch action {
	case "down":
		return e, c.do(ctx, "DELETE", "/v1/environments/"+name, nil, &e)
	case "extend":
		return e, c.do(ctx, "POST", "/v1/environments/"+name+"/extend", map[string]int{"hours": hours}, &e)
	}
	return e, c.do(ctx, "POST", "/v1/environments/"+name+"/"+action, nil, &e)
}

// Watch follows the events stream, calling fn for each state until fn
// returns false, the stream ends or ctx does.
func (c *Client) Watch(ctx context.Context, name string, fn func(envmgr.Environment) bool) error {
	req, err := http.NewRequestWithContext(ctx, "GET", strings.TrimRight(c.BaseURL, "/")+"/v1/environments/"+name+"/events", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		se := &StatusError{Status: resp.StatusCode}
		_ = json.NewDecoder(resp.Body).Decode(&se.Body)
		return se
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), spec.MaxFileBytes*4)
	event := ""
	for sc.Scan() {
		if ev, ok := strings.CutPrefix(sc.Text(), "event: "); ok {
			event = ev
			continue
		}
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		if event == "progress" {
			var p envmgr.ProgressEvent
			if c.Progress != nil && json.Unmarshal([]byte(data), &p) == nil {
				c.Progress(p)
			}
			continue
		}
		var e envmgr.Environment
		if err := json.Unmarshal([]byte(data), &e); err != nil {
			return fmt.Errorf("event: %w", err)
		}
		if !fn(e) {
			return nil
		}
	}
	if err := sc.Err(); err != nil && ctx.Err() == nil {
		return err
	}
	return ctx.Err()
}
