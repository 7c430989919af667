package kafka

import (
	"bytes"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

// TestBaseConfigMapsOptions checks that every orderer.yaml Kafka setting reaches sarama.
func TestBaseConfigMapsOptions(t *testing.T) {
	caPEM, certPEM, keyPEM := testPKI(t)
	o := Options{
		Brokers:              []string{"127.0.0.1:1"},
		DialTimeout:          3 * time.Second,
		ReadTimeout:          4 * time.Second,
		WriteTimeout:         5 * time.Second,
		MetadataRetryBackoff: 300 * time.Millisecond,
		MetadataRetryMax:     7,
		ProducerRetryBackoff: 150 * time.Millisecond,
		ProducerRetryMax:     6,
		ConsumerRetryBackoff: 3 * time.Second,
		TLS:                  TLSOptions{Enabled: true, CertPEM: certPEM, KeyPEM: keyPEM, RootCAsPEM: [][]byte{caPEM}},
		SASL:                 SASLOptions{Enabled: true, User: "u", Password: "p"},
	}.withDefaults()
	conf, err := baseConfig(o)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"Net.DialTimeout", conf.Net.DialTimeout, 3 * time.Second},
		{"Net.ReadTimeout", conf.Net.ReadTimeout, 4 * time.Second},
		{"Net.WriteTimeout", conf.Net.WriteTimeout, 5 * time.Second},
		{"Metadata.Retry.Backoff", conf.Metadata.Retry.Backoff, 300 * time.Millisecond},
		{"Metadata.Retry.Max", conf.Metadata.Retry.Max, 7},
		{"Producer.Retry.Backoff", conf.Producer.Retry.Backoff, 150 * time.Millisecond},
		{"Producer.Retry.Max", conf.Producer.Retry.Max, 6},
		{"Consumer.Retry.Backoff", conf.Consumer.Retry.Backoff, 3 * time.Second},
		{"Producer.RequiredAcks", conf.Producer.RequiredAcks, sarama.WaitForAll},
		{"Producer.MaxMessageBytes", conf.Producer.MaxMessageBytes, DefaultMaxMessageBytes},
		{"Net.TLS.Enable", conf.Net.TLS.Enable, true},
		{"Net.TLS client certificates", len(conf.Net.TLS.Config.Certificates), 1},
		{"Net.SASL.Enable", conf.Net.SASL.Enable, true},
		{"Net.SASL.Mechanism", conf.Net.SASL.Mechanism, sarama.SASLMechanism(sarama.SASLTypePlaintext)},
		{"Net.SASL.User", conf.Net.SASL.User, "u"},
		{"Net.SASL.Password", conf.Net.SASL.Password, "p"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if conf.Net.TLS.Config.RootCAs == nil {
		t.Error("Net.TLS root CAs not set")
	}
}

// TestVerboseRoutesSaramaLog: Kafka.Verbose sends sarama's own log lines to the orderer's log,
// under the logger orderer.consensus.kafka.sarama. sarama's logger is a process-wide variable
// read by its goroutines, so the check runs in a process of its own, with no client around.
func TestVerboseRoutesSaramaLog(t *testing.T) {
	if os.Getenv("KORD_TEST_VERBOSE_CHILD") == "1" {
		var logs bytes.Buffer
		o := Options{Brokers: []string{"127.0.0.1:1"}, Verbose: true,
			Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}.withDefaults()
		if _, err := baseConfig(o); err != nil {
			t.Fatal(err)
		}
		sarama.Logger.Printf("hello from %s", "sarama")
		if !strings.Contains(logs.String(), "hello from sarama") || !strings.Contains(logs.String(), "orderer.consensus.kafka.sarama") {
			t.Fatalf("sarama's log line did not reach the orderer's log: %q", logs.String())
		}
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestVerboseRoutesSaramaLog$", "-test.count=1")
	cmd.Env = append(os.Environ(), "KORD_TEST_VERBOSE_CHILD=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
}
