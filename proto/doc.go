// Package proto is paddock's market-data wire format: exact decimals, fixed
// little-endian message layouts, and the NATS subjects they travel on. SPEC.md
// in this directory documents every byte; this package is its Go
// implementation and has no dependencies beyond the standard library and no
// I/O.
//
// Encoders append to a caller-provided buffer and allocate only when it lacks
// room. Decoders return flyweight views over the caller's buffer: Decode
// validates lengths, version and exponents once, and the views' accessors
// then read fixed offsets without copying. A view is valid only while its
// buffer is unchanged; everything in this package is safe for concurrent use
// as long as buffers are not shared for writing.
package proto
