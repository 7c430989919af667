package logging

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"testing"
)

func TestParseSpec(t *testing.T) {
	for _, tc := range []struct {
		spec   string
		norm   string
		levels map[string]slog.Level
	}{
		{"", "info", map[string]slog.Level{"x": slog.LevelInfo}},
		{"debug", "debug", map[string]slog.Level{"orderer.consensus.kafka": slog.LevelDebug}},
		{"DEBUG", "debug", nil},
		{"warning", "warn", nil},
		{"info:orderer.kafka=debug", "orderer.kafka=debug:info", map[string]slog.Level{
			"orderer.kafka":        slog.LevelDebug,
			"orderer.kafka.sarama": slog.LevelDebug, // below a named logger
			"orderer.kafkax":       slog.LevelInfo,  // a prefix of the name, not a parent
			"orderer":              slog.LevelInfo,
		}},
		{"info:orderer.kafka=debug:grpc=warn", "grpc=warn:orderer.kafka=debug:info", map[string]slog.Level{
			"grpc.server": slog.LevelWarn, "orderer.kafka.x": slog.LevelDebug, "ledger": slog.LevelInfo,
		}},
		{"orderer=warn:orderer.consensus=debug:error", "orderer.consensus=debug:orderer=warn:error", map[string]slog.Level{
			"orderer.common.broadcast": slog.LevelWarn,  // longest match wins
			"orderer.consensus.kafka":  slog.LevelDebug, // longest match wins
			"common.deliver":           slog.LevelError,
		}},
		{"a,b.c=debug", "a=debug:b.c=debug:info", map[string]slog.Level{"a.x": slog.LevelDebug, "b.c": slog.LevelDebug, "b": slog.LevelInfo}},
		{"orderer.=debug", "orderer.=debug:info", map[string]slog.Level{"orderer": slog.LevelDebug, "orderer.x": slog.LevelInfo}},
		{"fatal:payload", "payload", map[string]slog.Level{"x": LevelPayload}}, // the last default wins
		{"critical", "error", nil},
	} {
		s, err := ParseSpec(tc.spec)
		if err != nil {
			t.Errorf("ParseSpec(%q): %v", tc.spec, err)
			continue
		}
		if s.String() != tc.norm {
			t.Errorf("ParseSpec(%q).String() = %q, want %q", tc.spec, s.String(), tc.norm)
		}
		for name, want := range tc.levels {
			if got := s.Level(name); got != want {
				t.Errorf("spec %q: level of %q = %v, want %v", tc.spec, name, got, want)
			}
		}
	}
	for _, bad := range []string{"loud", "info:=debug", "a=b=c", "x=loud", "a..b=debug", ".a=info", "a b=info"} {
		if _, err := ParseSpec(bad); err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("ParseSpec(%q) = %v, want an error quoting the spec", bad, err)
		}
	}
}

type countObserver struct {
	mu               sync.Mutex
	checked, written map[slog.Level]int
}

func (c *countObserver) Checked(l slog.Level) { c.mu.Lock(); c.checked[l]++; c.mu.Unlock() }
func (c *countObserver) Written(l slog.Level) { c.mu.Lock(); c.written[l]++; c.mu.Unlock() }

func TestNamedLoggersAndRuntimeChange(t *testing.T) {
	var buf bytes.Buffer
	l, err := New(Config{Spec: "info:orderer.consensus.kafka=debug", Writer: &buf})
	if err != nil {
		t.Fatal(err)
	}
	obs := &countObserver{checked: map[slog.Level]int{}, written: map[slog.Level]int{}}
	l.SetObserver(obs)
	root := l.Logger("orderer")
	// Naming through the attribute, as packages that do not import this one do.
	kafka := root.With(LoggerKey, "orderer.consensus.kafka", "channel", "mychannel")
	bcast := root.With(LoggerKey, "orderer.common.broadcast")

	kafka.Debug("consumed", "offset", 7)
	bcast.Debug("hidden")
	bcast.Info("shown")
	out := buf.String()
	if !strings.Contains(out, "[orderer.consensus.kafka]") || !strings.Contains(out, "-> consumed channel=mychannel offset=7") {
		t.Errorf("kafka line missing or without its channel:\n%s", out)
	}
	if strings.Contains(out, "hidden") || !strings.Contains(out, "[orderer.common.broadcast]") {
		t.Errorf("broadcast lines wrong:\n%s", out)
	}
	if strings.Contains(out, "logger=") {
		t.Errorf("the logger attribute leaked into the output:\n%s", out)
	}
	if obs.checked[slog.LevelDebug] != 2 || obs.written[slog.LevelDebug] != 1 || obs.written[slog.LevelInfo] != 1 {
		t.Errorf("observer: checked %v written %v", obs.checked, obs.written)
	}

	// Run-time change: broadcast to debug, kafka back to the default.
	if err := l.ActivateSpec("warn:orderer.common=debug"); err != nil {
		t.Fatal(err)
	}
	if l.Spec() != "orderer.common=debug:warn" {
		t.Errorf("Spec() = %q", l.Spec())
	}
	buf.Reset()
	bcast.Debug("now shown")
	kafka.Info("now hidden")
	if out := buf.String(); !strings.Contains(out, "now shown") || strings.Contains(out, "now hidden") {
		t.Errorf("after ActivateSpec:\n%s", out)
	}
	// A bad spec leaves the old one in force.
	if err := l.ActivateSpec("info:x=nope"); err == nil {
		t.Fatal("bad spec accepted")
	}
	if l.Spec() != "orderer.common=debug:warn" {
		t.Errorf("Spec() after a refused change = %q", l.Spec())
	}
}

func TestConsoleFormat(t *testing.T) {
	var buf bytes.Buffer
	l, err := New(Config{Writer: &buf})
	if err != nil {
		t.Fatal(err)
	}
	g := l.Logger("orderer.common.server").WithGroup("tls")
	g.Warn("certificate reloaded", "file", "/etc/tls/server crt", "err", errors.New("x=y"))
	line := buf.String()
	// 2026-01-02 15:04:05.000 UTC 0001 WARN [orderer.common.server] TestConsoleFormat -> ...
	re := regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} \S+ 0001 WARN \[orderer\.common\.server\] TestConsoleFormat -> certificate reloaded tls\.file="/etc/tls/server crt" tls\.err="x=y"\n$`)
	if !re.MatchString(line) {
		t.Errorf("console line %q does not match %s", line, re)
	}

	buf.Reset()
	if err := l.SetFormat("%{color}%{level}%{color:reset} %{module}: %{message}"); err != nil {
		t.Fatal(err)
	}
	l.Logger("a").Error("boom")
	if got := buf.String(); got != "\x1b[31mERROR\x1b[0m a: boom\n" {
		t.Errorf("custom format: %q", got)
	}
	if err := l.SetFormat("%{color:purple}"); err == nil {
		t.Error("unknown colour accepted")
	}
}

func TestJSONAndLogfmt(t *testing.T) {
	var buf bytes.Buffer
	l, err := New(Config{Format: "json", Writer: &buf})
	if err != nil {
		t.Fatal(err)
	}
	l.Logger("orderer.consensus.kafka").Info("chain connected", "channel", "mychannel", "height", 3, "err", errors.New("e"))
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatalf("%v: %q", err, buf.String())
	}
	if m["level"] != "info" || m["name"] != "orderer.consensus.kafka" || m["msg"] != "chain connected" ||
		m["channel"] != "mychannel" || m["height"] != float64(3) || m["err"] != "e" {
		t.Errorf("json line: %v", m)
	}

	buf.Reset()
	if err := l.SetFormat("logfmt"); err != nil {
		t.Fatal(err)
	}
	l.Logger("x").Info("hello world", "channel", "c")
	if got := buf.String(); !regexp.MustCompile(`^ts=\S+ level=info logger=x msg="hello world" channel=c\n$`).MatchString(got) {
		t.Errorf("logfmt line %q", got)
	}
}

func TestConcurrentWritesDoNotInterleave(t *testing.T) {
	var buf bytes.Buffer
	l, err := New(Config{Format: "logfmt", Writer: &buf})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lg := l.Logger("w")
			for j := range 50 {
				lg.Info("line", "i", i, "j", j)
				if j == 25 && i == 0 {
					_ = l.ActivateSpec("info")
				}
			}
		}()
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 400 {
		t.Fatalf("%d lines, want 400", len(lines))
	}
	for _, ln := range lines {
		if !strings.HasPrefix(ln, "ts=") || strings.Count(ln, "ts=") != 1 {
			t.Fatalf("mangled line %q", ln)
		}
	}
}
