// Package jsonbody is the one rule both HTTP APIs (the manager's and the
// node's admin API) decode request bodies by: exactly one JSON object, no
// unknown fields, nothing after it, at most a size limit, and a declared
// content type, if any, that is JSON. Anything else is an *Error carrying the
// HTTP status to answer with.
package jsonbody

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
)

// Error is a refused body and the status that says why: 400 for malformed
// JSON, 413 for a body over the limit, 415 for a non-JSON content type.
type Error struct {
	Status int
	Msg    string
}

func (e *Error) Error() string { return e.Msg }

// Decode reads r's body into v. An empty body decodes as {} when allowEmpty
// is true, and is refused otherwise.
func Decode(r *http.Request, v any, limit int64, allowEmpty bool) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !(len(mt) > 5 && mt[len(mt)-5:] == "+json")) {
			return &Error{Status: http.StatusUnsupportedMediaType, Msg: "body must be application/json"}
		}
	}
	raw, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return &Error{Status: http.StatusBadRequest, Msg: "read body: " + err.Error()}
	}
	if int64(len(raw)) > limit {
		return &Error{Status: http.StatusRequestEntityTooLarge, Msg: fmt.Sprintf("body is over the limit of %d bytes", limit)}
	}
	return Bytes(raw, v, allowEmpty)
}

// Bytes applies the same rule to a body already read.
func Bytes(raw []byte, v any, allowEmpty bool) error {
	if len(bytes.TrimSpace(raw)) == 0 {
		if allowEmpty {
			return nil
		}
		return &Error{Status: http.StatusBadRequest, Msg: "body: a JSON object is required"}
	}
	if t := bytes.TrimLeft(raw, " \t\r\n"); t[0] != '{' {
		return &Error{Status: http.StatusBadRequest, Msg: "body: must be a JSON object"}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return &Error{Status: http.StatusBadRequest, Msg: "body: " + err.Error()}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return &Error{Status: http.StatusBadRequest, Msg: "body: data after the JSON object"}
	}
	return nil
}
