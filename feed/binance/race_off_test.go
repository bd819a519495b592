//go:build !race

package binance

const raceEnabled = false
