// Package daemon wires the feed multiplexer together from a configuration:
// a connection to NATS, one adapter per venue, the feed service and its HTTP
// endpoints. It owns no NATS server: StartNATS starts the embedded one the
// configuration describes, as a peer the caller owns (cmd/paddock's feed and
// dev commands, and the benchmark harness).
package daemon

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/paddockhq/paddock/proto"
	"github.com/paddockhq/paddock/record"
	"github.com/paddockhq/paddock/venue"
	"gopkg.in/yaml.v3"
)

// Config is the feed's configuration file. feed.example.yaml documents it.
type Config struct {
	NATS           NATSConfig    `yaml:"nats"`
	MetricsListen  string        `yaml:"metrics_listen"`
	StatusInterval time.Duration `yaml:"status_interval"`
	Venues         []VenueConfig `yaml:"venues"`
	// Record, when set, records every venue in JetStream (record.Ensure)
	// and publishes book checkpoints for replays.
	Record *record.Config `yaml:"record"`
}

// NATSConfig selects the bus: an embedded server (the default) or external
// URLs.
type NATSConfig struct {
	// URLs of an external NATS cluster; empty: the paddock feed command
	// starts an embedded server (StartNATS) and connects to it.
	URLs []string `yaml:"urls"`
	// Credentials is a .creds file for the external cluster.
	Credentials string `yaml:"credentials"`
	// Embedded configures the in-process server.
	Embedded EmbeddedConfig `yaml:"embedded"`
}

// EmbeddedConfig configures the embedded NATS server.
type EmbeddedConfig struct {
	Listen   string `yaml:"listen"`    // default 127.0.0.1:4222
	StoreDir string `yaml:"store_dir"` // JetStream data; default .state/nats
	// AuthDir, when set, runs the server in operator/JWT mode with the
	// authority kept there (created on first use); the feed connects as its
	// own user and the directory holds the other services' .creds files.
	AuthDir string `yaml:"auth_dir"`
}

// VenueConfig is one venue: what every venue has (endpoints, instruments,
// events, the connection lifecycle of feed/session), and one typed section
// for its adapter family's own settings. A section for another family is
// refused, not ignored.
type VenueConfig struct {
	// Name is a venue the registry knows and this feed carries, or, with
	// Kind, the subject token of an instance of that kind.
	Name string `yaml:"name"`
	// Kind makes this entry an instance of a registry venue (its protocol,
	// adapter and settings) under its own Name and WireID, e.g. a second
	// Binance endpoint. An instance carries market data for subscribers;
	// environments trade the registry's venues.
	Kind string `yaml:"kind"`
	// WireID is an instance's venue id in message headers: from
	// proto.LocalVenueIDs (1024) up, unique in the feed.
	WireID      uint16   `yaml:"wire_id"`
	WSURL       string   `yaml:"ws_url"`
	RESTURL     string   `yaml:"rest_url"`
	Instruments []string `yaml:"instruments"`
	Events      []string `yaml:"events"` // trades, orderbook, bbo (default all)
	// The connection lifecycle (feed/session), for every venue.
	SilenceTimeout   time.Duration `yaml:"silence_timeout"`
	MaxConnectionAge time.Duration `yaml:"max_connection_age"`
	RolloverOverlap  time.Duration `yaml:"rollover_overlap"`
	// Binance is the Binance family's section (binance, binance-perp).
	Binance *BinanceSettings `yaml:"binance"`
	// Bybit is the Bybit family's section (bybit, bybit-perp).
	Bybit *BybitSettings `yaml:"bybit"`
}

// BybitSettings are the Bybit adapter's own settings.
type BybitSettings struct {
	// Depth is the orderbook topic's depth (default 50; spot 1/50/200/1000,
	// linear also 500). Push intervals differ by depth and are not assumed.
	Depth int `yaml:"depth"`
	// PingInterval is the client heartbeat (default 20s, Bybit's advice).
	PingInterval time.Duration `yaml:"ping_interval"`
}

// BinanceSettings are the Binance adapter's own settings.
type BinanceSettings struct {
	TradeStream string `yaml:"trade_stream"`               // trade | aggTrade (default: the venue's)
	DepthLimit  int    `yaml:"depth_limit"`                // REST snapshot depth (default 1000)
	MaxStreams  int    `yaml:"max_streams_per_connection"` // default and maximum 1024
}

// movedToSection are the first wave's flat Binance keys, now in the
// binance section: a configuration that still has them is told where they
// went.
var movedToSection = []string{"trade_stream", "depth_limit", "max_streams_per_connection"}

// LoadConfig reads and validates a configuration file. Unknown fields are
// errors, so a misspelt option is never silently ignored.
func LoadConfig(path string) (*Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return ParseConfig(raw)
}

// ParseConfig parses and validates configuration YAML.
func ParseConfig(raw []byte) (*Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		for _, k := range movedToSection {
			if strings.Contains(err.Error(), "field "+k+" not found") {
				return nil, fmt.Errorf("parse config: %w (Binance's %s moved into the venue's binance: section)", err, k)
			}
		}
		return nil, fmt.Errorf("parse config: %w", err)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// Validate fills defaults and checks the configuration, reporting every
// problem at once.
func (c *Config) Validate() error {
	var errs []error
	if c.MetricsListen == "" {
		c.MetricsListen = "127.0.0.1:9464"
	}
	if c.StatusInterval <= 0 {
		c.StatusInterval = time.Second
	}
	if len(c.NATS.URLs) == 0 {
		if c.NATS.Embedded.Listen == "" {
			c.NATS.Embedded.Listen = "127.0.0.1:4222"
		}
		if c.NATS.Embedded.StoreDir == "" {
			c.NATS.Embedded.StoreDir = ".state/nats"
		}
	}
	if len(c.Venues) == 0 {
		errs = append(errs, errors.New("venues: at least one venue is required"))
	}
	seen, wireIDs := map[string]bool{}, map[uint16]bool{}
	for i := range c.Venues {
		v := &c.Venues[i]
		at := fmt.Sprintf("venues[%d] (%s)", i, v.Name)
		d, err := v.registryVenue()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", at, err))
			continue
		}
		if v.Kind != "" {
			if v.WireID < uint16(proto.LocalVenueIDs) {
				errs = append(errs, fmt.Errorf("%s: an instance needs a wire_id from %d up (site-local venue ids)", at, proto.LocalVenueIDs))
			} else if wireIDs[v.WireID] {
				errs = append(errs, fmt.Errorf("%s: wire_id %d is another venue's", at, v.WireID))
			}
			wireIDs[v.WireID] = true
			if v.WSURL == "" || d.Adapter == "binance" && v.RESTURL == "" {
				errs = append(errs, fmt.Errorf("%s: an instance names its endpoints (ws_url, and rest_url for the binance kind)", at))
			}
		} else if v.WireID != 0 {
			errs = append(errs, fmt.Errorf("%s: wire_id is for instances (with kind); %s has its own", at, v.Name))
		}
		if seen[v.Name] {
			errs = append(errs, fmt.Errorf("%s: venue listed twice", at))
		}
		seen[v.Name] = true
		if v.WSURL == "" {
			v.WSURL = d.WSURL
		}
		if v.RESTURL == "" {
			v.RESTURL = d.RESTURL
		}
		switch {
		case d.Adapter == "binance":
			if v.Binance == nil {
				v.Binance = &BinanceSettings{}
			}
			if v.Binance.TradeStream == "" {
				v.Binance.TradeStream = d.TradeStream
			}
			if ts := v.Binance.TradeStream; ts != "trade" && ts != "aggTrade" {
				errs = append(errs, fmt.Errorf("%s: binance.trade_stream %q: want trade or aggTrade", at, ts))
			}
			if n := v.Binance.MaxStreams; n < 0 || n > 1024 {
				errs = append(errs, fmt.Errorf("%s: binance.max_streams_per_connection %d: want 1 to 1024 (Binance's limit)", at, n))
			}
			if n := v.Binance.DepthLimit; n < 0 || n > 5000 {
				errs = append(errs, fmt.Errorf("%s: binance.depth_limit %d: want 1 to 5000", at, n))
			}
		case v.Binance != nil:
			errs = append(errs, fmt.Errorf("%s: a binance section, but %s is not a Binance venue", at, v.Name))
		}
		switch {
		case d.Adapter == "bybit":
			if v.Bybit == nil {
				v.Bybit = &BybitSettings{}
			}
			if v.Bybit.Depth == 0 {
				v.Bybit.Depth = 50
			}
			ok := map[int]bool{1: true, 50: true, 200: true, 1000: true, 500: d.Type == "perpetual"}
			if !ok[v.Bybit.Depth] {
				errs = append(errs, fmt.Errorf("%s: bybit.depth %d: want 1, 50, 200 or 1000 (500 too for perpetuals)", at, v.Bybit.Depth))
			}
			if v.Bybit.PingInterval < 0 || v.Bybit.PingInterval > time.Minute {
				errs = append(errs, fmt.Errorf("%s: bybit.ping_interval %v: want up to 1m (Bybit closes quiet connections)", at, v.Bybit.PingInterval))
			}
		case v.Bybit != nil:
			errs = append(errs, fmt.Errorf("%s: a bybit section, but %s is not a Bybit venue", at, v.Name))
		}
		if len(v.Instruments) == 0 {
			errs = append(errs, fmt.Errorf("%s: instruments: at least one is required", at))
		}
		for _, in := range v.Instruments {
			if err := proto.CheckToken(in); err != nil {
				errs = append(errs, fmt.Errorf("%s: instrument %q: %w (use the lower-case exchange symbol, e.g. btcusdt)", at, in, err))
			}
		}
		if len(v.Events) == 0 {
			v.Events = []string{"trades", "orderbook", "bbo"}
		}
		for _, e := range v.Events {
			if _, ok := proto.EventByName(e); !ok {
				errs = append(errs, fmt.Errorf("%s: event %q: want trades, orderbook or bbo", at, e))
			}
		}
	}
	return errors.Join(errs...)
}

// registryVenue is the registry entry a venue entry runs as: its own, or its
// kind's for an instance (whose name must then be a new subject token).
func (v *VenueConfig) registryVenue() (venue.Venue, error) {
	name := v.Name
	if v.Kind != "" {
		if err := proto.CheckToken(v.Name); err != nil {
			return venue.Venue{}, fmt.Errorf("instance name %q: %w", v.Name, err)
		}
		if _, taken := venue.ByName(v.Name); taken {
			return venue.Venue{}, fmt.Errorf("instance name %q is a registry venue's; choose another", v.Name)
		}
		name = v.Kind
	}
	d, ok := venue.ByName(name)
	if !ok || adapters[d.Adapter] == nil {
		return venue.Venue{}, fmt.Errorf("unknown venue %q (this feed carries: %s)", name, strings.Join(carried(), ", "))
	}
	return d, nil
}
