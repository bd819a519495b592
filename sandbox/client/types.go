package client

import "time"

// The order API's JSON. Decimals are strings ("0.001", "97123.45") so that
// no language's float parsing touches a price or a quantity.

// OrderRequest places an order.
type OrderRequest struct {
	ClientID    string `json:"client_id,omitempty"` // the strategy's own reference, echoed back
	Venue       string `json:"venue"`
	Symbol      string `json:"symbol"`
	Side        string `json:"side"`                    // buy | sell
	Type        string `json:"type"`                    // limit | market
	TimeInForce string `json:"time_in_force,omitempty"` // gtc (default for limit) | ioc
	Qty         string `json:"qty"`
	Price       string `json:"price,omitempty"` // limit orders only
}

// CancelRequest cancels an open order.
type CancelRequest struct {
	ID uint64 `json:"id"`
}

// Order statuses.
const (
	StatusOpen            = "open" // resting, nothing filled
	StatusPartiallyFilled = "partially_filled"
	StatusFilled          = "filled"
	StatusCancelled       = "cancelled" // by request, halt, IOC remainder or no liquidity
	StatusRejected        = "rejected"
)

// Order is an order's state, as replies and order events carry it.
type Order struct {
	ID          uint64    `json:"id"`
	ClientID    string    `json:"client_id,omitempty"`
	Venue       string    `json:"venue"`
	Symbol      string    `json:"symbol"`
	Side        string    `json:"side"`
	Type        string    `json:"type"`
	TimeInForce string    `json:"time_in_force"`
	Qty         string    `json:"qty"`
	Price       string    `json:"price,omitempty"`
	Filled      string    `json:"filled"`
	AvgPrice    string    `json:"avg_price,omitempty"`
	Fees        string    `json:"fees"`
	Status      string    `json:"status"`
	Code        string    `json:"code,omitempty"`   // why it was rejected or cancelled
	Reason      string    `json:"reason,omitempty"` // the human reason
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// Fill is one execution, published on env.<name>.fills.
type Fill struct {
	OrderID     uint64    `json:"order_id"`
	ClientID    string    `json:"client_id,omitempty"`
	Venue       string    `json:"venue"`
	Symbol      string    `json:"symbol"`
	Side        string    `json:"side"`
	Qty         string    `json:"qty"`
	Price       string    `json:"price"`
	Fee         string    `json:"fee"`
	FeeCurrency string    `json:"fee_currency"`
	Liquidity   string    `json:"liquidity"` // maker | taker
	MarketSeq   uint64    `json:"market_seq"`
	Time        time.Time `json:"time"`
}

// RiskEvent is published on env.<name>.risk.
type RiskEvent struct {
	Type     string    `json:"type"` // rejected | halted | resumed | venue_unhealthy | venue_healthy
	Code     string    `json:"code,omitempty"`
	Reason   string    `json:"reason"`
	Venue    string    `json:"venue,omitempty"`
	Symbol   string    `json:"symbol,omitempty"`
	OrderID  uint64    `json:"order_id,omitempty"`
	ClientID string    `json:"client_id,omitempty"`
	Time     time.Time `json:"time"`
}

// Reply answers every order API request.
type Reply struct {
	Order  *Order  `json:"order,omitempty"`
	Orders []Order `json:"orders,omitempty"`
	Code   string  `json:"code,omitempty"`
	Error  string  `json:"error,omitempty"`
}

// Node states in NodeStatus.
const (
	NodeRunning  = "running"
	NodeStopping = "stopping"
)

// NodeStatus is the node's heartbeat on env.<name>.node: published when the
// node starts serving, every few seconds while it runs and once when it
// stops. The environment manager waits for the first one after provisioning
// a remote node ("the node reports ready"); a missing heartbeat tells a dead
// node from a quiet one.
type NodeStatus struct {
	Env       string    `json:"env"`
	State     string    `json:"state"` // running | stopping
	Admin     string    `json:"admin"` // the admin API as the node sees it
	StartedAt time.Time `json:"started_at"`
	Time      time.Time `json:"time"`
	Halted    bool      `json:"halted"`
	BooksLive int       `json:"books_live"`
	Books     int       `json:"books"`
	Strategy  string    `json:"strategy,omitempty"` // running | paused | restarting; empty without one
	Health    *Health   `json:"health,omitempty"`
	// CredsExpireAt is when the NATS credentials the node loaded expire
	// (zero without credentials, or for credentials that do not expire).
	CredsExpireAt time.Time `json:"creds_expire_at,omitzero"`
}

// Health is the node's GET /readyz: whether it does what it was asked
// (every declared book live, the strategy running, not halted) and, when
// not, why.
type Health struct {
	Ready      bool            `json:"ready"`
	Reasons    []string        `json:"reasons,omitempty"`
	BooksLive  int             `json:"books_live"`
	Books      int             `json:"books"`
	Strategy   *StrategyHealth `json:"strategy,omitempty"`
	Halted     bool            `json:"halted"`
	HaltReason string          `json:"halt_reason,omitempty"`
}

// StrategyHealth is the supervised strategy process.
type StrategyHealth struct {
	Running  bool   `json:"running"`
	Restarts int    `json:"restarts"`
	LastExit string `json:"last_exit,omitempty"`
}
