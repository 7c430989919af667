package config

import (
	"encoding/pem"
	"errors"
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"
	"time"
)

// Validate checks a configuration built or changed in code. Load and its
// variants already call it, naming each setting by where it came from.
func (c *TopLevel) Validate() error {
	return c.validate(func(path string) string { return path },
		func(string) (string, bool) { return "", false })
}

// validator collects every problem, so that one run shows them all.
type validator struct {
	name func(path string) string
	// raw gives the text a setting was written as, so that messages quote
	// what the operator wrote ("3 GB") rather than the parsed value.
	raw  func(path string) (string, bool)
	errs []error
}

func (v *validator) bad(path, value string, format string, args ...any) {
	if r, ok := v.raw(path); ok {
		value = r
	}
	v.badItem(path, value, format, args...)
}

// badItem reports one item of a list, which is quoted as is.
func (v *validator) badItem(path, value string, format string, args ...any) {
	v.errs = append(v.errs, fmt.Errorf("config: %s=%s: %s", v.name(path), strconv.Quote(value), fmt.Sprintf(format, args...)))
}

func (v *validator) secretBad(path string, format string, args ...any) {
	v.errs = append(v.errs, fmt.Errorf("config: %s=<redacted>: %s", v.name(path), fmt.Sprintf(format, args...)))
}

func (v *validator) required(path, value, why string) {
	if strings.TrimSpace(value) == "" {
		v.bad(path, value, "required %s", why)
	}
}

func (v *validator) positive(path string, d time.Duration) {
	if d <= 0 {
		v.bad(path, d.String(), "must be greater than zero")
	}
}

func (v *validator) hostPort(path, addr string, allowZeroPort bool) {
	v.address(path, addr, allowZeroPort, v.bad)
}

func (v *validator) address(path, addr string, allowZeroPort bool, bad func(path, value, format string, args ...any)) {
	host, port, err := net.SplitHostPort(strings.TrimSpace(addr))
	if err != nil {
		hint := ""
		if strings.Contains(addr, ",") {
			hint = "; give several addresses as a list: [host1:port,host2:port]"
		}
		bad(path, addr, "not a host:port address%s", hint)
		return
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 || (n == 0 && !allowZeroPort) {
		bad(path, addr, "port must be a number between 1 and 65535")
		return
	}
	if host == "" && !allowZeroPort {
		bad(path, addr, "host is missing")
	}
}

func (v *validator) serverTLS(prefix string, t TLS) {
	if !t.Enabled {
		return
	}
	v.required(prefix+".PrivateKey", t.PrivateKey, "when "+prefix+".Enabled is true")
	v.required(prefix+".Certificate", t.Certificate, "when "+prefix+".Enabled is true")
}

func (v *validator) pemBlock(path string, p PEMSource, wantType string) {
	rest := []byte(p.PEM)
	if strings.TrimSpace(p.PEM) == "" {
		v.bad(path, p.File, "required when Kafka.TLS.Enabled is true (PEM text or a File sub-key)")
		return
	}
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if wantType == "" || b.Type == wantType {
			return
		}
	}
	what := "no PEM block"
	if wantType != "" {
		what = "no " + wantType + " PEM block"
	}
	if p.File != "" {
		v.errs = append(v.errs, fmt.Errorf("config: %s=%s: %s in the file", fileKey(v.name(path)), strconv.Quote(p.File), what))
		return
	}
	v.secretBad(path, "%s found", what)
}

// fileKey names the File sub-key of a PEM setting named display: the
// _FILE variable itself, or the key path with .File appended.
func fileKey(display string) string {
	if strings.HasSuffix(display, "_FILE") {
		return display
	}
	return display + ".File"
}

func (c *TopLevel) validate(name func(path string) string, raw func(path string) (string, bool)) error {
	v := &validator{name: name, raw: raw}
	g := c.General

	v.required("General.ListenAddress", g.ListenAddress, "(the address to listen on)")
	if g.ListenPort == 0 {
		v.bad("General.ListenPort", "0", "must be between 1 and 65535")
	}
	v.serverTLS("General.TLS", g.TLS)
	switch g.BootstrapMethod {
	case "file":
		v.required("General.BootstrapFile", g.BootstrapFile, "when General.BootstrapMethod is file")
	case "none":
	case "provisional":
		v.bad("General.BootstrapMethod", g.BootstrapMethod,
			"not supported since Fabric 2.0; create the genesis block with configtxgen and use file")
	default:
		v.bad("General.BootstrapMethod", g.BootstrapMethod, "must be file or none")
	}
	for _, m := range []struct {
		path string
		size uint32
	}{{"General.MaxRecvMsgSize", g.MaxRecvMsgSize}, {"General.MaxSendMsgSize", g.MaxSendMsgSize}} {
		if m.size == 0 || m.size > math.MaxInt32 {
			v.bad(m.path, strconv.FormatUint(uint64(m.size), 10), "must be between 1 and %d bytes", math.MaxInt32)
		}
	}
	v.positive("General.Authentication.TimeWindow", g.Authentication.TimeWindow)
	if g.Profile.Enabled {
		v.hostPort("General.Profile.Address", g.Profile.Address, true)
	}
	v.required("General.LocalMSPDir", g.LocalMSPDir, "(the local MSP directory)")
	v.required("General.LocalMSPID", g.LocalMSPID, "(the local MSP ID)")
	v.required("FileLedger.Location", c.FileLedger.Location, "(the block store directory)")

	k := c.Kafka
	for _, d := range []struct {
		path string
		d    time.Duration
	}{
		{"Kafka.Retry.ShortInterval", k.Retry.ShortInterval},
		{"Kafka.Retry.ShortTotal", k.Retry.ShortTotal},
		{"Kafka.Retry.LongInterval", k.Retry.LongInterval},
		{"Kafka.Retry.LongTotal", k.Retry.LongTotal},
		{"Kafka.Retry.NetworkTimeouts.DialTimeout", k.Retry.NetworkTimeouts.DialTimeout},
		{"Kafka.Retry.NetworkTimeouts.ReadTimeout", k.Retry.NetworkTimeouts.ReadTimeout},
		{"Kafka.Retry.NetworkTimeouts.WriteTimeout", k.Retry.NetworkTimeouts.WriteTimeout},
	} {
		v.positive(d.path, d.d)
	}
	for _, r := range []struct {
		path string
		n    int
	}{{"Kafka.Retry.Metadata.RetryMax", k.Retry.Metadata.RetryMax}, {"Kafka.Retry.Producer.RetryMax", k.Retry.Producer.RetryMax}} {
		if r.n < 0 {
			v.bad(r.path, strconv.Itoa(r.n), "must not be negative")
		}
	}
	if k.Topic.ReplicationFactor < 1 {
		v.bad("Kafka.Topic.ReplicationFactor", strconv.Itoa(int(k.Topic.ReplicationFactor)), "must be at least 1")
	}
	if _, err := ParseKafkaVersion(k.Version); err != nil {
		v.bad("Kafka.Version", k.Version, "%v", err)
	}
	for _, b := range k.Brokers {
		v.address("Kafka.Brokers", b, false, v.badItem)
	}
	if k.TLS.Enabled {
		v.pemBlock("Kafka.TLS.PrivateKey", k.TLS.PrivateKey, "")
		v.pemBlock("Kafka.TLS.Certificate", k.TLS.Certificate, "CERTIFICATE")
		v.pemBlock("Kafka.TLS.RootCAs", k.TLS.RootCAs, "CERTIFICATE")
	}
	if k.SASLPlain.Enabled {
		v.required("Kafka.SASLPlain.User", k.SASLPlain.User, "when Kafka.SASLPlain.Enabled is true")
		if k.SASLPlain.Password == "" {
			v.bad("Kafka.SASLPlain.Password", "", "required when Kafka.SASLPlain.Enabled is true")
		}
	}

	v.hostPort("Operations.ListenAddress", c.Operations.ListenAddress, true)
	v.serverTLS("Operations.TLS", c.Operations.TLS)

	if c.Admin.ListenAddress != "" {
		v.hostPort("Admin.ListenAddress", c.Admin.ListenAddress, true)
	}
	v.serverTLS("Admin.TLS", c.Admin.TLS)
	if c.Admin.TLS.Enabled && !c.Admin.TLS.ClientAuthRequired {
		v.bad("Admin.TLS.ClientAuthRequired", "false", "must be true when Admin.TLS.Enabled is true")
	}

	m := c.Metrics
	switch m.Provider {
	case "prometheus", "disabled":
	case "statsd":
		switch m.Statsd.Network {
		case "udp", "tcp":
		default:
			v.bad("Metrics.Statsd.Network", m.Statsd.Network, "must be udp or tcp")
		}
		v.hostPort("Metrics.Statsd.Address", m.Statsd.Address, false)
		v.positive("Metrics.Statsd.WriteInterval", m.Statsd.WriteInterval)
	default:
		v.bad("Metrics.Provider", m.Provider, "must be prometheus, statsd or disabled")
	}
	return errors.Join(v.errs...)
}
