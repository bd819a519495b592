// Package buildinfo says which build of paddock is running: `paddock
// version` prints it and every component's /metrics carries it as
// paddock_build_info, so ops can tell which build answers.
package buildinfo

import (
	"fmt"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
)

// Info is what the Go toolchain recorded in the binary.
type Info struct {
	Version   string // the module version, "(devel)" for a local build
	Revision  string // the VCS revision, "" when not built from a checkout
	Time      string // the revision's commit time (RFC 3339)
	Dirty     bool   // the checkout had uncommitted changes
	GoVersion string
}

// Read returns the running binary's build information.
func Read() Info {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return Info{Version: "unknown"}
	}
	in := Info{Version: bi.Main.Version, GoVersion: bi.GoVersion}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			in.Revision = s.Value
		case "vcs.time":
			in.Time = s.Value
		case "vcs.modified":
			in.Dirty = s.Value == "true"
		}
	}
	return in
}

func (in Info) String() string {
	s := "paddock " + in.Version
	if in.Revision != "" {
		s += " " + in.Revision
		if in.Dirty {
			s += " (dirty)"
		}
	}
	if in.Time != "" {
		s += " " + in.Time
	}
	return fmt.Sprintf("%s %s", s, in.GoVersion)
}

// Register adds the paddock_build_info gauge (always 1, the build in its
// labels) to reg.
func Register(reg prometheus.Registerer) {
	in := Read()
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "paddock_build_info",
		Help: "The running paddock build: module version, VCS revision, dirty flag and Go version (value 1)."},
		[]string{"version", "revision", "dirty", "goversion"})
	g.WithLabelValues(in.Version, in.Revision, fmt.Sprint(in.Dirty), in.GoVersion).Set(1)
	reg.MustRegister(g)
}
