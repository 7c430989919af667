package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kordhq/kord/orderer/loadgen"
)

func TestParseBenchFlags(t *testing.T) {
	base := []string{"-c", "ch", "--msp-dir", "/m", "--msp-id", "Org1MSP"}
	b, err := parseBenchFlags(base)
	if err != nil {
		t.Fatal(err)
	}
	if b.count != defaultBenchCount || b.streams != 1 || b.size != 1024 || !b.deliver || b.progress != "auto" || b.jsonOut != "-" {
		t.Fatalf("defaults %+v", b)
	}
	b, err = parseBenchFlags(append(base, "--duration", "30s", "--sign-on-the-fly", "--streams", "16", "--deliver=false"))
	if err != nil {
		t.Fatal(err)
	}
	if b.count != 0 || b.duration != 30*time.Second || b.streams != 16 || b.deliver {
		t.Fatalf("%+v", b)
	}
	for _, bad := range [][]string{
		{"--msp-dir", "/m", "--msp-id", "X"},              // no channel
		{"-c", "ch"},                                      // no identity
		append(base, "--streams", "0"),                    // no stream
		append(base, "--duration", "5s"),                  // prepared, bounded by time only
		append(base, "--tls-cert", "c.pem"),               // no key
		append(base, "--tls-cert", "c", "--tls-key", "k"), // no CA
		append(base, "--progress", "maybe"),
		append(base, "-o", "nohostport"),
		append(base, "extra"),
	} {
		_, err := parseBenchFlags(bad)
		var ue usageError
		if !errors.As(err, &ue) {
			t.Errorf("%q: %v, want a usage error", bad, err)
		}
	}
	if _, err := parseBenchFlags(append(base, "--duration", "5s", "--rate", "100")); err != nil {
		t.Errorf("rate and duration: %v", err)
	}
}

func TestBenchTLSConfig(t *testing.T) {
	b := &benchFlags{orderer: "127.0.0.1:7050"}
	if tc, h, err := b.tlsConfig(); tc != nil || h != nil || err != nil {
		t.Fatal("TLS without --tls-ca")
	}
	b.tlsCA = filepath.Join(t.TempDir(), "none.pem")
	if _, _, err := b.tlsConfig(); err == nil {
		t.Fatal("missing CA file accepted")
	}
}

func TestProgressLine(t *testing.T) {
	l := progressLine(loadgen.Progress{Phase: "preparing", Prepared: 50, Total: 100})
	if !strings.Contains(l, " 50%") || !strings.Contains(l, "50/100") {
		t.Errorf("%q", l)
	}
	l = progressLine(loadgen.Progress{Phase: "sending", Total: 1000, Sent: 250, Acked: 200, Delivered: 100, Refused: 3, Elapsed: time.Second})
	for _, want := range []string{" 25%", "sent 250", "acked 200 (200/s)", "delivered 100", "refused 3", "[======                  ]"} {
		if !strings.Contains(l, want) {
			t.Errorf("%q lacks %q", l, want)
		}
	}
	// Bounded by time: the fraction of the duration.
	l = progressLine(loadgen.Progress{Phase: "sending", Duration: 10 * time.Second, Elapsed: 5 * time.Second})
	if !strings.Contains(l, " 50%") {
		t.Errorf("%q", l)
	}
	if l := progressLine(loadgen.Progress{Phase: "done", Total: 10, Sent: 10}); !strings.Contains(l, "100%") {
		t.Errorf("%q", l)
	}
}

func TestWriteReportAppends(t *testing.T) {
	p := filepath.Join(t.TempDir(), "r.jsonl")
	for range 2 {
		if err := writeReport(p, &loadgen.Report{Sent: 1}); err != nil {
			t.Fatal(err)
		}
	}
	raw, _ := os.ReadFile(p)
	if n := strings.Count(string(raw), "\"sent\":1,"); n != 2 {
		t.Fatalf("%d reports in %s", n, raw)
	}
}

func TestParseKafkaFlags(t *testing.T) {
	k, err := parseKafkaFlags([]string{"--listen", "127.0.0.1:9092", "--brokers", "3"})
	if err != nil {
		t.Fatal(err)
	}
	if k.host != "127.0.0.1" || len(k.ports) != 3 || k.ports[2] != 9094 {
		t.Fatalf("%+v", k)
	}
	if k, err := parseKafkaFlags([]string{"--listen", "127.0.0.1:0", "--brokers", "2"}); err != nil || k.ports != nil {
		t.Fatalf("ephemeral ports: %+v %v", k, err)
	}
	for _, bad := range [][]string{
		{"--listen", "localhost:9092"}, {"--listen", "127.0.0.1"}, {"--brokers", "0"},
		{"--listen", "127.0.0.1:65535", "--brokers", "2"}, {"--sync"},
	} {
		if _, err := parseKafkaFlags(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestRunKafkaStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runKafka(ctx, []string{"--listen", "127.0.0.1:0", "--dir", t.TempDir()}) }()
	time.Sleep(300 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("kordctl kafka did not stop")
	}
}
