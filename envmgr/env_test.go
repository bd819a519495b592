package envmgr

import (
	"errors"
	"testing"
	"time"
)

func TestTransitions(t *testing.T) {
	// The whole happy path, twice around the stop/start loop.
	path := []State{StateProvisioning, StateReady, StateStopping, StateStopped, StateStarting, StateReady,
		StateStopping, StateStopped, StateStarting, StateReady, StateDestroying, StateDestroyed}
	e := Environment{Name: "x", State: StateRequested}
	for _, s := range path {
		if err := e.Move(s, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct{ from, to State }{
		{StateRequested, StateReady},
		{StateReady, StateStopped},
		{StateStopped, StateReady},
		{StateDestroyed, StateProvisioning},
		{StateDestroyed, StateDestroying},
		{StateStopped, StateFailed},
		{StateReady, StateRequested},
	} {
		e := Environment{Name: "x", State: tc.from}
		if err := e.Move(tc.to, time.Now()); !errors.Is(err, ErrIllegalTransition) || e.State != tc.from {
			t.Errorf("%s -> %s: %v, state now %s", tc.from, tc.to, err, e.State)
		}
	}
	for s := range transitions {
		for _, to := range transitions[s] {
			if !to.Valid() {
				t.Errorf("%s leads to unknown state %s", s, to)
			}
		}
	}
}

func TestFailRemembersStep(t *testing.T) {
	e := Environment{Name: "x", State: StateProvisioning}
	if err := e.Fail("instance quota exceeded", time.Now()); err != nil {
		t.Fatal(err)
	}
	if e.State != StateFailed || e.FailedAt != StateProvisioning || e.Reason != "instance quota exceeded" {
		t.Fatalf("%+v", e)
	}
	if err := e.Move(StateProvisioning, time.Now()); err != nil || e.Reason != "" {
		t.Fatalf("retry after failure: %v, reason %q", err, e.Reason)
	}
	d := Environment{Name: "y", State: StateDestroyed}
	if err := d.Fail("x", time.Now()); !errors.Is(err, ErrIllegalTransition) {
		t.Fatalf("failing a destroyed environment: %v", err)
	}
}
