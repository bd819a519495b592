package main

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"

	"github.com/paddockhq/paddock/proto"
)

// humanJSON renders a decoded message for people: decimals as exact
// decimal strings ("27123.45" rather than {"exp":-2,"mant":"2712345"}) and
// nanosecond times as RFC 3339 (UTC). Nothing is rounded.
func humanJSON(m proto.Message) []byte {
	var v any
	dec := json.NewDecoder(bytes.NewReader(m.AppendJSON(nil)))
	dec.UseNumber()
	if dec.Decode(&v) != nil {
		return m.AppendJSON(nil)
	}
	out, err := json.Marshal(humanize("", v))
	if err != nil {
		return m.AppendJSON(nil)
	}
	return out
}

var timeKeys = map[string]bool{"event_time": true, "recv_time": true, "last_data": true}

func humanize(key string, v any) any {
	switch x := v.(type) {
	case map[string]any:
		if len(x) == 2 {
			if e, ok := x["exp"].(json.Number); ok {
				if mant, ok := x["mant"].(string); ok {
					if d, ok := decimalOf(mant, e); ok {
						return d.String()
					}
				}
			}
		}
		for k, c := range x {
			x[k] = humanize(k, c)
		}
		return x
	case []any:
		for i, c := range x {
			x[i] = humanize(key, c)
		}
		return x
	case string:
		if timeKeys[key] {
			if ns, err := strconv.ParseInt(x, 10, 64); err == nil {
				if ns == 0 {
					return ""
				}
				return time.Unix(0, ns).UTC().Format(time.RFC3339Nano)
			}
		}
	}
	return v
}

func decimalOf(mant string, exp json.Number) (proto.Decimal, bool) {
	m, err := strconv.ParseInt(mant, 10, 64)
	if err != nil {
		return proto.Decimal{}, false
	}
	e, err := exp.Int64()
	if err != nil || e < -128 || e > 127 {
		return proto.Decimal{}, false
	}
	return proto.Decimal{Mant: m, Exp: int8(e)}, true
}
