package config

import (
	"strings"
	"testing"
)

// FuzzParseEnvValue feeds one arbitrary value to every parser and to every
// ORDERER_ variable at once (except the _FILE forms, which would open
// arbitrary paths). Nothing may panic, and accepted values must satisfy the
// parsers' own promises.
func FuzzParseEnvValue(f *testing.F) {
	for _, seed := range []string{
		"", "0", "7050", "-1", "abc", "true", "FALSE", "yes", "2s", "500ms", "-5m", "1h30m",
		"99 MB", "10 MB", "512 KB", "4 GB", "18446744073709551615 G", "1 MiB", "[a,b]", "[a, b]",
		"['a', \"b\"]", "[]", "[,]", "\"[x]\"", "\"", "'", "[", "]", "0.10.2.0", "2.8.1", "1.0.0.0",
		"3.9.0", "0.8.1.0", "99999999.1.1", "host:9092", "-----BEGIN CERTIFICATE-----\\nAA==\\n-----END CERTIFICATE-----",
	} {
		f.Add(seed)
	}
	s, err := loadSchema()
	if err != nil {
		f.Fatal(err)
	}
	var names []string
	for name, t := range s.env {
		if !t.file {
			names = append(names, "ORDERER_"+name)
		}
	}
	f.Fuzz(func(t *testing.T, value string) {
		if _, err := parseBool(value); err != nil && err.Error() == "" {
			t.Fatal("empty error")
		}
		for _, bits := range []int{8, 16, 32, 64} {
			_, _ = parseInt(value, bits)
			_, _ = parseUint(value, bits)
			if n, err := parseSize(value, bits); err == nil && bits < 64 && n >= 1<<bits {
				t.Fatalf("parseSize(%q, %d) = %d overflows", value, bits, n)
			}
		}
		if d, err := parseDuration(value); err == nil && d < 0 {
			t.Fatalf("parseDuration(%q) = %v is negative", value, d)
		}
		for _, item := range parseList(value) {
			if item == "" {
				t.Fatalf("parseList(%q) has an empty item", value)
			}
		}
		if v, err := ParseKafkaVersion(value); err == nil {
			again, err := ParseKafkaVersion(v.String())
			if err != nil || again != v {
				t.Fatalf("ParseKafkaVersion(%q) = %v does not round-trip: %v %v", value, v, again, err)
			}
		}
		_ = envPEM(value)

		env := make([]string, 0, len(names))
		for _, n := range names {
			env = append(env, n+"="+value)
		}
		c, _, err := LoadYAML(DefaultYAML, "", env)
		if err == nil && c == nil {
			t.Fatal("no configuration and no error")
		}
		if err != nil && !strings.HasPrefix(err.Error(), "config: ") {
			t.Fatalf("error without context: %v", err)
		}
	})
}

// FuzzLoadYAML loads arbitrary bytes as orderer.yaml: errors are fine,
// panics are not.
func FuzzLoadYAML(f *testing.F) {
	f.Add(DefaultYAML)
	f.Add([]byte("General:\n  ListenPort: abc\n"))
	f.Add([]byte("a: &a [*a]\n"))
	f.Add([]byte("General:\n  TLS: &t\n    Enabled: true\n  Cluster:\n    <<: *t\n"))
	f.Add([]byte("Kafka:\n  TLS:\n    RootCAs:\n      File: [x]\n"))
	f.Add([]byte("- 1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, _, err := LoadYAML(data, "", nil)
		if err == nil && c == nil {
			t.Fatal("no configuration and no error")
		}
	})
}
