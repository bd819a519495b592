package risk

import (
	"fmt"
	"math/big"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/paddockhq/paddock/proto"
)

// model is an independent reference for the engine, in math/big: cash-based
// equity (no lots), and the position rule stated directly.
type model struct {
	pos, openBuy, openSell, cash, mark *big.Rat
	start, peak                        *big.Rat
	halted                             bool
}

func r(s string) *big.Rat { v, _ := new(big.Rat).SetString(s); return v }

func (m *model) equity() *big.Rat {
	return new(big.Rat).Add(new(big.Rat).Add(m.start, m.cash), new(big.Rat).Mul(m.pos, m.mark))
}

type open struct {
	side Side
	left proto.Decimal
}

// TestProperties runs random order, fill, cancel and mark streams against
// the engine and the model. Properties:
//   - every decision of the position rule matches the model exactly;
//   - after every accepted order, the worst case (position plus every open
//     order on that side, all filled) is within max_position_usd at the
//     current mark, or no larger than the position (a reducing order);
//   - fills never move the position outside what open orders allow, so the
//     accepted bound holds until the next order is checked;
//   - equity equals the model's cash-based equity exactly;
//   - a drawdown of max_drawdown_pct from the peak always halts, nothing less
//     does, and a halted engine accepts nothing until resumed.
func TestProperties(t *testing.T) {
	seeds := 200
	if testing.Short() {
		seeds = 20
	}
	var total stats
	for seed := range uint64(seeds) {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			s := runProperty(t, seed)
			total.halts += s.halts
			total.positionRejects += s.positionRejects
			total.fills += s.fills
		})
	}
	// The streams must reach the interesting cases, or the properties hold
	// vacuously.
	if total.halts < seeds/10 || total.positionRejects < seeds || total.fills < seeds*10 {
		t.Fatalf("streams too tame: %+v", total)
	}
	t.Logf("%+v", total)
}

type stats struct{ halts, positionRejects, fills int }

func runProperty(t *testing.T, seed uint64) (st stats) {
	rng := rand.New(rand.NewPCG(seed, 99))
	l := Limits{MaxPositionUSD: d("1000"), MaxDrawdownPct: d("3.5"), MaxOrderRate: d("1000"),
		StartingEquityUSD: d("1000"), MaxMarkAge: time.Hour}
	e, err := New(l)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := e.AddInstrument(Instrument{"binance", "btcusdt", "USDT"})
	m := &model{pos: r("0"), openBuy: r("0"), openSell: r("0"), cash: r("0"), mark: r("100"),
		start: r("1000"), peak: r("1000")}
	price := int64(10000) // cents
	e.Mark(0, id, proto.Decimal{Mant: price, Exp: -2})
	var orders []open
	now := int64(0)
	limit := r("1000")
	pct := r("3.5")
	checkDrawdown := func(step int, what string) {
		eq := m.equity()
		if a := e.Account(); rat(a.Equity).Cmp(eq) != 0 {
			t.Fatalf("step %d %s: equity %s, model %s", step, what, a.Equity, eq.FloatString(10))
		}
		if eq.Cmp(m.peak) > 0 {
			m.peak = eq
		}
		drop := new(big.Rat).Mul(new(big.Rat).Sub(m.peak, eq), r("100"))
		breach := drop.Cmp(new(big.Rat).Mul(m.peak, pct)) >= 0
		halted, _ := e.Halted()
		if breach && !m.halted {
			m.halted = true
			st.halts++
			if !halted {
				t.Fatalf("step %d %s: drawdown breach did not halt (peak %s equity %s)", step, what, m.peak.FloatString(4), eq.FloatString(4))
			}
		}
		if halted != m.halted {
			t.Fatalf("step %d %s: engine halted=%v, model %v", step, what, halted, m.halted)
		}
	}
	for step := range 400 {
		now += int64(time.Millisecond)
		switch k := rng.IntN(10); {
		case k < 3: // mark moves
			price += rng.Int64N(801) - 400
			price = max(price, 100)
			p := proto.Decimal{Mant: price, Exp: -2}
			m.mark = rat(Dec(p))
			e.Mark(now, id, p)
			checkDrawdown(step, "mark")
		case k < 7: // an order
			side := Side(1 + rng.IntN(2))
			q := proto.Decimal{Mant: 1 + rng.Int64N(600), Exp: -3}
			after := new(big.Rat).Set(m.pos)
			if side == Buy {
				after.Add(after, m.openBuy).Add(after, rat(Dec(q)))
			} else {
				after.Sub(after, m.openSell).Sub(after, rat(Dec(q)))
			}
			absAfter, absPos := new(big.Rat).Abs(after), new(big.Rat).Abs(m.pos)
			within := new(big.Rat).Mul(absAfter, m.mark).Cmp(limit) <= 0
			wantOK := !m.halted && (absAfter.Cmp(absPos) <= 0 || within)
			res := e.Accept(now, Order{id, side, q})
			if res.OK() != wantOK {
				t.Fatalf("step %d: %v %s at %s with pos %s: engine %q, model accept=%v", step, side, q,
					m.mark.FloatString(2), m.pos.FloatString(3), res.Error(), wantOK)
			}
			if res.Code == RejectPosition {
				st.positionRejects++
			}
			if m.halted && res.Code != RejectHalted {
				t.Fatalf("step %d: halted engine answered %v", step, res.Code)
			}
			if res.OK() {
				orders = append(orders, open{side, q})
				if side == Buy {
					m.openBuy.Add(m.openBuy, rat(Dec(q)))
				} else {
					m.openSell.Add(m.openSell, rat(Dec(q)))
				}
			}
		case k < 9 && len(orders) > 0: // a (partial) fill
			i := rng.IntN(len(orders))
			o := &orders[i]
			q := proto.Decimal{Mant: 1 + rng.Int64N(o.left.Mant), Exp: o.left.Exp}
			p := proto.Decimal{Mant: price + rng.Int64N(21) - 10, Exp: -2}
			fee := Dec(proto.Decimal{Mant: q.Mant * p.Mant, Exp: q.Exp + p.Exp - 3}) // 0.1%
			lo := new(big.Rat).Sub(m.pos, m.openSell)
			hi := new(big.Rat).Add(m.pos, m.openBuy)
			qr, pr := rat(Dec(q)), rat(Dec(p))
			if o.side == Buy {
				m.pos.Add(m.pos, qr)
				m.openBuy.Sub(m.openBuy, qr)
				m.cash.Sub(m.cash, new(big.Rat).Mul(qr, pr))
			} else {
				m.pos.Sub(m.pos, qr)
				m.openSell.Sub(m.openSell, qr)
				m.cash.Add(m.cash, new(big.Rat).Mul(qr, pr))
			}
			m.cash.Sub(m.cash, rat(fee))
			if m.pos.Cmp(lo) < 0 || m.pos.Cmp(hi) > 0 {
				t.Fatalf("step %d: fill moved the position outside its reserved bounds", step)
			}
			st.fills++
			if _, err := e.Fill(id, o.side, q, p, fee); err != nil {
				t.Fatal(err)
			}
			if got := e.Position(id).Qty; rat(got).Cmp(m.pos) != 0 {
				t.Fatalf("step %d: position %s, model %s", step, got, m.pos.FloatString(3))
			}
			o.left.Mant -= q.Mant
			if o.left.Mant == 0 {
				orders = append(orders[:i], orders[i+1:]...)
			}
			checkDrawdown(step, "fill")
		case len(orders) > 0: // cancel
			i := rng.IntN(len(orders))
			o := orders[i]
			e.Release(id, o.side, o.left)
			if o.side == Buy {
				m.openBuy.Sub(m.openBuy, rat(Dec(o.left)))
			} else {
				m.openSell.Sub(m.openSell, rat(Dec(o.left)))
			}
			orders = append(orders[:i], orders[i+1:]...)
		}
		if m.halted && rng.IntN(20) == 0 { // an admin resumes
			e.Resume()
			m.halted, m.peak = false, m.equity()
		}
	}
	return st
}
