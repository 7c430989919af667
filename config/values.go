package config

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"strconv"
	"strings"
	"time"
)

// The parsers below are shared by the file and the environment, so that a
// value means the same thing wherever it is written. Their errors describe
// the problem only; the caller prefixes the key and the value.

// unquote strips one pair of matching surrounding quotes. Compose files in
// list form (`- KEY="value"`) pass the quotes through to the process, and
// Fabric users are used to them being tolerated.
func unquote(s string) string {
	if len(s) >= 2 {
		if q := s[0]; (q == '"' || q == '\'') && s[len(s)-1] == q {
			return s[1 : len(s)-1]
		}
	}
	return s
}

func scalar(s string) string { return unquote(strings.TrimSpace(s)) }

func parseBool(s string) (bool, error) {
	switch strings.ToLower(scalar(s)) {
	case "true", "t", "1", "yes", "on":
		return true, nil
	case "false", "f", "0", "no", "off":
		return false, nil
	}
	return false, errors.New("not a boolean (want true or false)")
}

func parseInt(s string, bitSize int) (int64, error) {
	v, err := strconv.ParseInt(scalar(s), 10, bitSize)
	if err != nil {
		if errors.Is(err, strconv.ErrRange) {
			return 0, fmt.Errorf("out of range [%d, %d]", int64(-1)<<(bitSize-1), int64(1)<<(bitSize-1)-1)
		}
		return 0, errors.New("not an integer")
	}
	return v, nil
}

func parseUint(s string, bitSize int) (uint64, error) {
	t := scalar(s)
	v, err := strconv.ParseUint(t, 10, bitSize)
	if err != nil {
		if errors.Is(err, strconv.ErrRange) {
			return 0, fmt.Errorf("out of range [0, %d]", uint64(math.MaxUint64)>>(64-bitSize))
		}
		if _, ierr := strconv.ParseInt(t, 10, 64); ierr == nil {
			return 0, errors.New("must not be negative")
		}
		return 0, errors.New("not an integer")
	}
	return v, nil
}

func parseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(scalar(s))
	if err != nil {
		return 0, errors.New("not a duration (e.g. 10s, 500ms, 5m, 2h)")
	}
	if d < 0 {
		return 0, errors.New("must not be negative")
	}
	return d, nil
}

// parseSize reads a byte count: plain digits, or digits followed by a unit
// K, M or G (optionally with B or iB), which like Fabric are powers of 1024.
func parseSize(s string, bitSize int) (uint64, error) {
	t := scalar(s)
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, errors.New("not a size (e.g. 10 MB, 512 KB, 1048576)")
	}
	n, err := strconv.ParseUint(t[:i], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("out of range [0, %d]", uint64(math.MaxUint64)>>(64-bitSize))
	}
	var shift uint
	switch strings.ToLower(strings.TrimSpace(t[i:])) {
	case "", "b":
	case "k", "kb", "kib":
		shift = 10
	case "m", "mb", "mib":
		shift = 20
	case "g", "gb", "gib":
		shift = 30
	default:
		return 0, errors.New("not a size (e.g. 10 MB, 512 KB, 1048576)")
	}
	if shift > 0 && bits.LeadingZeros64(n) < int(shift) {
		return 0, fmt.Errorf("out of range [0, %d]", uint64(math.MaxUint64)>>(64-bitSize))
	}
	n <<= shift
	if bitSize < 64 && n > uint64(1)<<bitSize-1 {
		return 0, fmt.Errorf("out of range [0, %d]", uint64(1)<<bitSize-1)
	}
	return n, nil
}

// parseList reads the environment's list notation: "[a,b]", "[a, b]",
// "['a', \"b\"]", "[]", or a single value. Empty items are dropped so that a
// trailing comma is harmless; an empty list is nil. Any text is a valid list.
func parseList(s string) []string {
	t := scalar(s)
	if len(t) < 2 || t[0] != '[' || t[len(t)-1] != ']' {
		if t == "" {
			return nil
		}
		return []string{t}
	}
	var out []string
	for item := range strings.SplitSeq(t[1:len(t)-1], ",") {
		if v := scalar(item); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// KafkaVersion is a broker protocol version. Versions before 1.0 have four
// components (0.10.2.0), later ones three (2.8.1), as sarama spells them.
type KafkaVersion struct {
	Major, Minor, Patch, Fix uint
}

// minKafkaVersion is the oldest protocol sarama and Fabric talk.
var minKafkaVersion = KafkaVersion{0, 8, 2, 0}

// ParseKafkaVersion parses a dotted Kafka version: 0.a.b.c before 1.0 and
// a.b.c from 1.0 on (a.b.c.0 is accepted too, as Fabric did). It does not
// check the version against a list of releases, so newer brokers need no
// code change here.
func ParseKafkaVersion(s string) (KafkaVersion, error) {
	t := scalar(s)
	parts := strings.Split(t, ".")
	if len(parts) < 3 || len(parts) > 4 {
		return KafkaVersion{}, errors.New("not a Kafka version (e.g. 0.10.2.0, 1.0.0, 2.8.1)")
	}
	var n [4]uint
	for i, p := range parts {
		if p == "" || len(p) > 5 || strings.TrimLeft(p, "0123456789") != "" {
			return KafkaVersion{}, errors.New("not a Kafka version (e.g. 0.10.2.0, 1.0.0, 2.8.1)")
		}
		v, err := strconv.ParseUint(p, 10, 32)
		if err != nil {
			return KafkaVersion{}, errors.New("not a Kafka version (e.g. 0.10.2.0, 1.0.0, 2.8.1)")
		}
		n[i] = uint(v)
	}
	v := KafkaVersion{n[0], n[1], n[2], n[3]}
	switch {
	case v.Major == 0 && len(parts) != 4:
		return KafkaVersion{}, errors.New("a Kafka version before 1.0 has four components (e.g. 0.10.2.0)")
	case v.Major > 0 && len(parts) == 4 && v.Fix != 0:
		return KafkaVersion{}, errors.New("a Kafka version from 1.0 on has three components (e.g. 2.8.1)")
	case v.less(minKafkaVersion):
		return KafkaVersion{}, fmt.Errorf("older than the oldest supported Kafka version %s", minKafkaVersion)
	}
	return v, nil
}

func (v KafkaVersion) less(o KafkaVersion) bool {
	a := [4]uint{v.Major, v.Minor, v.Patch, v.Fix}
	b := [4]uint{o.Major, o.Minor, o.Patch, o.Fix}
	for i := range a {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return false
}

// String gives the version in sarama's notation, which
// sarama.ParseKafkaVersion accepts.
func (v KafkaVersion) String() string {
	if v.Major == 0 {
		return fmt.Sprintf("0.%d.%d.%d", v.Minor, v.Patch, v.Fix)
	}
	return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch)
}
