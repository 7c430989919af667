package logging

import (
	"fmt"
	"log/slog"
	"regexp"
	"sort"
	"strings"
)

// Levels beyond slog's four, so that every level name of Fabric's specs means something. Only
// Debug, Info, Warn and Error are logged at by kord; the others exist so that a spec such as
// "fatal" (silence everything but the worst) or "payload" (more than debug) parses as in Fabric.
const (
	LevelPayload = slog.LevelDebug - 1
	LevelDPanic  = slog.LevelError + 1
	LevelPanic   = slog.LevelError + 2
	LevelFatal   = slog.LevelError + 3
)

// ParseLevel reads a level name as Fabric's specs write it, in lower or upper case: payload,
// debug, info, notice (= info), warn or warning, error, critical (= error), dpanic, panic,
// fatal.
func ParseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "payload":
		return LevelPayload, nil
	case "debug":
		return slog.LevelDebug, nil
	case "info", "notice":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error", "critical":
		return slog.LevelError, nil
	case "dpanic":
		return LevelDPanic, nil
	case "panic":
		return LevelPanic, nil
	case "fatal":
		return LevelFatal, nil
	}
	return 0, fmt.Errorf("invalid log level %q (want payload, debug, info, warn, error, dpanic, panic or fatal)", s)
}

// LevelName is the lower-case name of a level, as GET /logspec shows it.
func LevelName(l slog.Level) string {
	switch {
	case l <= LevelPayload:
		return "payload"
	case l <= slog.LevelDebug:
		return "debug"
	case l <= slog.LevelInfo:
		return "info"
	case l <= slog.LevelWarn:
		return "warn"
	case l <= slog.LevelError:
		return "error"
	case l <= LevelDPanic:
		return "dpanic"
	case l <= LevelPanic:
		return "panic"
	default:
		return "fatal"
	}
}

// loggerName is what may appear on the left of "=" in a spec: dot-separated words of letters,
// digits, '_', '#', ':' and '-', optionally ending with a dot.
var loggerName = regexp.MustCompile(`^[[:alnum:]_#:-]+(\.[[:alnum:]_#:-]+)*$`)

// Spec is a parsed logging specification in Fabric's syntax:
//
//	[<logger>[,<logger>...]=]<level>[:[<logger>[,<logger>...]=]<level>...]
//
// A bare level is the default. "orderer.consensus=debug" applies to the logger of that name
// and to every logger below it (orderer.consensus.kafka, ...); a name ending with a dot
// ("orderer.consensus.=debug") applies to that exact logger only. The longest matching name
// wins. A Spec is immutable.
type Spec struct {
	def   slog.Level
	named map[string]slog.Level
	min   slog.Level
}

// ParseSpec parses spec; the empty spec means "info".
func ParseSpec(spec string) (*Spec, error) {
	s := &Spec{def: slog.LevelInfo, named: map[string]slog.Level{}}
	bad := func(seg string, err error) error {
		if err != nil {
			return fmt.Errorf("logging: invalid spec %q: segment %q: %w", spec, seg, err)
		}
		return fmt.Errorf("logging: invalid spec %q: bad segment %q", spec, seg)
	}
	for _, seg := range strings.Split(strings.TrimSpace(spec), ":") {
		names, lvl, hasNames := strings.Cut(seg, "=")
		if !hasNames {
			if seg == "" {
				continue
			}
			l, err := ParseLevel(seg)
			if err != nil {
				return nil, bad(seg, err)
			}
			s.def = l
			continue
		}
		if names == "" {
			return nil, bad(seg, fmt.Errorf("no logger named before '='"))
		}
		if strings.Contains(lvl, "=") {
			return nil, bad(seg, nil)
		}
		l, err := ParseLevel(lvl)
		if err != nil {
			return nil, bad(seg, err)
		}
		for _, n := range strings.Split(names, ",") {
			if !loggerName.MatchString(strings.TrimSuffix(n, ".")) {
				return nil, bad(seg, fmt.Errorf("bad logger name %q", n))
			}
			s.named[n] = l
		}
	}
	s.min = s.def
	for _, l := range s.named {
		s.min = min(s.min, l)
	}
	return s, nil
}

// Level is the level in force for the logger called name.
func (s *Spec) Level(name string) slog.Level {
	if l, ok := s.named[name+"."]; ok {
		return l
	}
	for n := name; n != ""; {
		if l, ok := s.named[n]; ok {
			return l
		}
		i := strings.LastIndexByte(n, '.')
		if i < 0 {
			break
		}
		n = n[:i]
	}
	return s.def
}

// MinLevel is the lowest level any logger logs at under this spec.
func (s *Spec) MinLevel() slog.Level { return s.min }

// String is the spec in normal form: the named levels sorted by name, then the default.
func (s *Spec) String() string {
	parts := make([]string, 0, len(s.named)+1)
	for n, l := range s.named {
		parts = append(parts, n+"="+LevelName(l))
	}
	sort.Strings(parts)
	return strings.Join(append(parts, LevelName(s.def)), ":")
}
