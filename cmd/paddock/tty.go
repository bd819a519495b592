package main

import (
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

// takeTerminal moves paddock into a process group of its own and makes it
// the terminal's foreground group, so that Ctrl-C (and the terminal's other
// signals) reach paddock alone, not the `make` that started it: paddock
// then stops everything cleanly and exits 0, and so does `make run`,
// instead of make reporting the interrupt as an error. The returned
// function hands the terminal back. Without a terminal, or when paddock is
// not in the foreground, it does nothing.
func takeTerminal() (restore func()) {
	fd := int(os.Stdin.Fd())
	fg, err := unix.IoctlGetInt(fd, unix.TIOCGPGRP)
	if err != nil || fg != syscall.Getpgrp() {
		return func() {}
	}
	// A background group that changes the terminal's foreground gets
	// SIGTTOU; paddock is doing exactly that, on purpose.
	signal.Ignore(syscall.SIGTTOU)
	if err := syscall.Setpgid(0, 0); err != nil {
		signal.Reset(syscall.SIGTTOU)
		return func() {}
	}
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPGRP, syscall.Getpgrp()); err != nil {
		_ = syscall.Setpgid(0, fg)
		signal.Reset(syscall.SIGTTOU)
		return func() {}
	}
	return func() {
		_ = unix.IoctlSetPointerInt(fd, unix.TIOCSPGRP, fg)
		signal.Reset(syscall.SIGTTOU)
	}
}
