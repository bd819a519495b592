package jsonbody

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestDecode(t *testing.T) {
	type body struct {
		Hours int `json:"hours"`
	}
	for _, tc := range []struct {
		name, ct, in string
		empty        bool
		status       int // 0: accepted
	}{
		{"object", "application/json", `{"hours":3}`, false, 0},
		{"charset", "application/json; charset=utf-8", `{"hours":3}`, false, 0},
		{"no content type", "", `{"hours":3}`, false, 0},
		{"empty allowed", "", ``, true, 0},
		{"empty refused", "", ``, false, 400},
		{"trailing object", "", `{"hours":3}{"hours":4}`, false, 400},
		{"trailing garbage", "", `{"hours":3} x`, false, 400},
		{"trailing space", "", "{\"hours\":3}\n  ", false, 0},
		{"array", "", `[1]`, false, 400},
		{"string", "", `"x"`, false, 400},
		{"unknown field", "", `{"hours":3,"x":1}`, false, 400},
		{"overflow", "", `{"hours":9223372036854775808}`, false, 400},
		{"text", "text/plain", `{"hours":3}`, false, 415},
		{"form", "application/x-www-form-urlencoded", `hours=3`, false, 415},
		{"bad media type", ";;;", `{}`, false, 415},
		{"too large", "", `{"hours":3}` + strings.Repeat(" ", 100), false, 413},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(tc.in))
			if tc.ct != "" {
				r.Header.Set("Content-Type", tc.ct)
			}
			var b body
			err := Decode(r, &b, 64, tc.empty)
			var je *Error
			switch {
			case tc.status == 0 && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.status != 0 && (!errors.As(err, &je) || je.Status != tc.status):
				t.Fatalf("got %v, want status %d", err, tc.status)
			}
		})
	}
}

func FuzzBytes(f *testing.F) {
	for _, s := range []string{`{"hours":1}`, `{}`, `{"a":[1,{"b":2}]}`, `{"hours":1}x`, ``, `null`, `{"hours":"1"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var v struct {
			Hours int            `json:"hours"`
			A     []any          `json:"a"`
			M     map[string]any `json:"m"`
		}
		err := Bytes(raw, &v, true)
		var je *Error
		if err != nil && (!errors.As(err, &je) || je.Status != 400) {
			t.Fatalf("%q: %v", raw, err)
		}
	})
}
