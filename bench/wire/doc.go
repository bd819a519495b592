// Package wire compares paddock's proto format with protobuf and
// encoding/json on the same Trade and 10-level BookDelta, in one benchmark run
// so the ratios are meaningful. It has no non-test code besides the generated
// protobuf types in wirepb; `make bench` prints the ratios.
package wire
