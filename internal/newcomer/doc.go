// Package newcomer holds only TestNewcomer: the first ten minutes of a new
// user, run in CI. It copies the repository to a fresh folder, runs
// `make run` there on every default (relative state directory, default
// ports), checks that the example strategy really trades, runs every command
// the program printed exactly as printed, runs `make run` a second time, and
// checks that closing the terminal (SIGHUP) leaves no process behind.
package newcomer
