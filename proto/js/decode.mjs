// A dependency-free decoder for paddock's market-data wire format, written
// from proto/SPEC.md alone. It proves the spec is enough for a second
// language, and strategy authors in JavaScript can copy it as it is.
//
// decode(bytes) takes a Uint8Array holding one message (extra bytes after it
// are ignored) and returns a plain object; 64-bit integers are strings, a
// decimal is {mant, exp} with value mant * 10^exp. Malformed input throws a
// DecodeError whose .code is "truncated", "version", "unknown_type" or
// "exponent"; for "unknown_type", .len says how many bytes to skip.

export const VERSION = 1;
export const HEADER_LEN = 32;

const TYPES = { 1: "trade", 2: "book_delta", 3: "book_snapshot", 4: "bbo", 5: "status", 6: "reset" };
const VENUES = { 1: "binance", 2: "binance-perp", 3: "bybit", 4: "bybit-perp", 5: "binance-us" };
const SIDES = { 1: "buy", 2: "sell" };
const STATES = { 1: "connecting", 2: "connected", 3: "disconnected", 4: "stale" };
const REASONS = { 1: "gap", 2: "disconnect", 3: "stale", 4: "resync", 5: "shutdown" };
const MIN_BODY = { trade: 32, book_delta: 24, book_snapshot: 24, bbo: 48, status: 24, reset: 16 };

export class DecodeError extends Error {
  constructor(code, message, len) {
    super(message);
    this.code = code;
    if (len !== undefined) this.len = len;
  }
}

const u64 = (dv, off) => dv.getBigUint64(off, true).toString();
const i64 = (dv, off) => dv.getBigInt64(off, true).toString();

function exponent(dv, off) {
  const e = dv.getInt8(off);
  if (e < -18 || e > 18) throw new DecodeError("exponent", `exponent ${e} at byte ${off} is outside [-18, 18]`);
  return e;
}

const dec = (dv, off, exp) => ({ mant: i64(dv, off), exp });

export function decode(bytes) {
  if (bytes.length < HEADER_LEN) throw new DecodeError("truncated", `${bytes.length} bytes, header needs ${HEADER_LEN}`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = dv.getUint8(0);
  if (version !== VERSION) throw new DecodeError("version", `format version ${version}, this decoder reads ${VERSION}`);
  const len = HEADER_LEN + 8 * dv.getUint16(6, true);
  if (bytes.length < len) throw new DecodeError("truncated", `message is ${len} bytes, got ${bytes.length}`);
  const typeId = dv.getUint8(1);
  const type = TYPES[typeId];
  if (type === undefined) throw new DecodeError("unknown_type", `unknown message type ${typeId}`, len);
  const venueId = dv.getUint16(4, true);
  const header = {
    version,
    type,
    flags: dv.getUint16(2, true),
    venue: VENUES[venueId] ?? `venue-${venueId}`,
    seq: u64(dv, 8),
    event_time: i64(dv, 16),
    recv_time: i64(dv, 24),
  };
  const bodyLen = len - HEADER_LEN;
  if (bodyLen < MIN_BODY[type]) throw new DecodeError("truncated", `${type} body is ${bodyLen} bytes, needs ${MIN_BODY[type]}`);
  const b = HEADER_LEN; // body offset
  const out = { header };
  switch (type) {
    case "trade": {
      const pexp = exponent(dv, b + 24), qexp = exponent(dv, b + 25);
      out.trade = {
        price: dec(dv, b, pexp),
        qty: dec(dv, b + 8, qexp),
        trade_id: u64(dv, b + 16),
        side: SIDES[dv.getUint8(b + 26)] ?? "unknown",
      };
      break;
    }
    case "book_delta":
    case "book_snapshot": {
      const nb = dv.getUint16(b + 16, true), na = dv.getUint16(b + 18, true);
      if (bodyLen < 24 + 16 * (nb + na)) throw new DecodeError("truncated", `${nb}+${na} levels do not fit a ${bodyLen}-byte body`);
      const pexp = exponent(dv, b + 20), qexp = exponent(dv, b + 21);
      const level = (i) => ({ price: dec(dv, b + 24 + 16 * i, pexp), qty: dec(dv, b + 32 + 16 * i, qexp) });
      const bids = Array.from({ length: nb }, (_, i) => level(i));
      const asks = Array.from({ length: na }, (_, i) => level(nb + i));
      // venue_seq follows the levels; an older feed's body ends with them (0).
      const tail = b + 24 + 16 * (nb + na);
      const venue_seq = bodyLen >= 24 + 16 * (nb + na) + 8 ? u64(dv, tail) : "0";
      out[type] = type === "book_delta"
        ? { first_update_id: u64(dv, b), last_update_id: u64(dv, b + 8), bids, asks, venue_seq }
        : { update_id: u64(dv, b), bids, asks, venue_seq };
      break;
    }
    case "bbo": {
      const pexp = exponent(dv, b + 40), qexp = exponent(dv, b + 41);
      out.bbo = {
        bid: { price: dec(dv, b, pexp), qty: dec(dv, b + 8, qexp) },
        ask: { price: dec(dv, b + 16, pexp), qty: dec(dv, b + 24, qexp) },
        update_id: u64(dv, b + 32),
      };
      break;
    }
    case "status":
      out.status = {
        state: STATES[dv.getUint8(b)] ?? "unknown",
        connections: dv.getUint16(b + 2, true),
        instruments: dv.getUint16(b + 4, true),
        in_sync: dv.getUint16(b + 6, true),
        last_data: i64(dv, b + 8),
        messages: u64(dv, b + 16),
        // Appended fields: an older feed's 24-byte body has none (0).
        gaps: bodyLen >= 32 ? u64(dv, b + 24) : "0",
        gaps_per_million: bodyLen >= 36 ? dv.getUint32(b + 32, true) : 0,
      };
      break;
    case "reset":
      out.reset = { reason: REASONS[dv.getUint8(b)] ?? "unknown", last_update_id: u64(dv, b + 8) };
      break;
  }
  return out;
}
