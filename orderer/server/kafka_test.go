package server

import (
	"crypto/tls"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kordhq/kord/config"
	"github.com/kordhq/kord/kafka/embedded"
)

// kafkaSecured is a kfake cluster with TLS and SASL/PLAIN on, and an orderer configured for
// it through Kafka.TLS and Kafka.SASLPlain (PEM inline, as orderer.yaml allows).
func kafkaSecured(t *testing.T, password string) *testNet {
	ca := newTestCA(t, "kafka CA")
	brokerCert := ca.keyPair(t, 1, "broker")
	clientCert, clientKey := ca.issue(t, 2, "orderer")
	kcfg := embedded.Config{TLS: &tls.Config{Certificates: []tls.Certificate{brokerCert}, MinVersion: tls.VersionTLS12}}
	kcfg.SASLPlain.User, kcfg.SASLPlain.Password = "orderer", "s3cret"
	return newTestNet(t, kcfg, func(n *testNet) {
		n.cfg.Kafka.TLS = config.KafkaTLS{
			Enabled:     true,
			Certificate: config.PEMSource{PEM: string(clientCert)},
			PrivateKey:  config.PEMSource{PEM: string(clientKey)},
			RootCAs:     config.PEMSource{PEM: string(ca.certPEM)},
		}
		n.cfg.Kafka.SASLPlain = config.SASLPlain{Enabled: true, User: "orderer", Password: password}
	})
}

// TestKafkaTLSAndSASL orders through brokers that require TLS and SASL/PLAIN.
func TestKafkaTLSAndSASL(t *testing.T) {
	n := kafkaSecured(t, "s3cret")
	n.start()
	ctx := testCtx(t, 60*time.Second)
	n.createChannel(ctx, testChannel)
	conn := n.dial(nil)
	if acked, err := broadcastN(ctx, conn, n.user, testChannel, 10); err != nil || acked != 10 {
		t.Fatalf("broadcast: %d acked, %v", acked, err)
	}
	if blocks, err := deliverUpTo(ctx, conn, n.user, testChannel, 2); err != nil || blocks != 3 {
		t.Fatalf("deliver: %d blocks, %v", blocks, err)
	}
}

// TestKafkaWrongPassword: with a wrong SASL password the orderer runs, /healthz answers 503
// naming each channel and the SASL refusal, and the log says the same.
func TestKafkaWrongPassword(t *testing.T) {
	n := kafkaSecured(t, "wrong")
	n.start()
	ctx := testCtx(t, 60*time.Second)
	for {
		code, hs := n.healthz()
		if code == http.StatusServiceUnavailable && len(hs.FailedChecks) == 1 && strings.Contains(hs.FailedChecks[0].Reason, "SASL") {
			fc := hs.FailedChecks[0]
			t.Logf("/healthz: %+v", fc)
			if fc.Component != "kafka/syschannel" {
				t.Errorf("component %q", fc.Component)
			}
			for _, want := range []string{`SASL/PLAIN authentication as user "orderer"`, "Kafka.SASLPlain.Password"} {
				if !strings.Contains(fc.Reason, want) {
					t.Errorf("reason does not say %q: %s", want, fc.Reason)
				}
			}
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("/healthz never named the SASL failure; last %d %+v", code, hs)
		case <-time.After(100 * time.Millisecond):
		}
	}
	if logs := n.logs.String(); !strings.Contains(logs, "SASL/PLAIN authentication") || !strings.Contains(logs, "channel=syschannel") {
		t.Errorf("log does not report the SASL failure for the channel:\n%s", tail(logs, 20))
	}
}

// TestKafkaOptionsFromEnvironment: the Kafka section, set through ORDERER_KAFKA_* variables
// as docker-compose files do, reaches the Kafka client's options.
func TestKafkaOptionsFromEnvironment(t *testing.T) {
	ca := newTestCA(t, "kafka CA")
	cert, key := ca.issue(t, 3, "orderer")
	dir := t.TempDir()
	env := []string{
		"ORDERER_KAFKA_RETRY_SHORTINTERVAL=1s",
		"ORDERER_KAFKA_RETRY_SHORTTOTAL=30s",
		"ORDERER_KAFKA_RETRY_LONGINTERVAL=10s",
		"ORDERER_KAFKA_RETRY_LONGTOTAL=100s",
		"ORDERER_KAFKA_RETRY_NETWORKTIMEOUTS_DIALTIMEOUT=3s",
		"ORDERER_KAFKA_RETRY_NETWORKTIMEOUTS_READTIMEOUT=4s",
		"ORDERER_KAFKA_RETRY_NETWORKTIMEOUTS_WRITETIMEOUT=5s",
		"ORDERER_KAFKA_RETRY_METADATA_RETRYMAX=6",
		"ORDERER_KAFKA_RETRY_METADATA_RETRYBACKOFF=700ms",
		"ORDERER_KAFKA_RETRY_PRODUCER_RETRYMAX=8",
		"ORDERER_KAFKA_RETRY_PRODUCER_RETRYBACKOFF=90ms",
		"ORDERER_KAFKA_RETRY_CONSUMER_RETRYBACKOFF=3s",
		"ORDERER_KAFKA_VERBOSE=true",
		"ORDERER_KAFKA_VERSION=2.8.1",
		"ORDERER_KAFKA_TOPIC_REPLICATIONFACTOR=2",
		"ORDERER_KAFKA_TLS_ENABLED=true",
		"ORDERER_KAFKA_TLS_CERTIFICATE_FILE=" + writeFile(t, dir, "client.crt", cert),
		"ORDERER_KAFKA_TLS_PRIVATEKEY_FILE=" + writeFile(t, dir, "client.key", key),
		"ORDERER_KAFKA_TLS_ROOTCAS_FILE=" + writeFile(t, dir, "ca.crt", ca.certPEM),
		"ORDERER_KAFKA_SASLPLAIN_ENABLED=true",
		"ORDERER_KAFKA_SASLPLAIN_USER=orderer",
		"ORDERER_KAFKA_SASLPLAIN_PASSWORD=s3cret",
	}
	cfg, _, err := config.LoadYAML(config.DefaultYAML, dir, env)
	if err != nil {
		t.Fatal(err)
	}
	o, err := kafkaOptions(cfg.Kafka, []string{"kafka0:9092"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"Retry.ShortInterval", o.Retry.ShortInterval, time.Second},
		{"Retry.ShortTotal", o.Retry.ShortTotal, 30 * time.Second},
		{"Retry.LongInterval", o.Retry.LongInterval, 10 * time.Second},
		{"Retry.LongTotal", o.Retry.LongTotal, 100 * time.Second},
		{"DialTimeout", o.DialTimeout, 3 * time.Second},
		{"ReadTimeout", o.ReadTimeout, 4 * time.Second},
		{"WriteTimeout", o.WriteTimeout, 5 * time.Second},
		{"MetadataRetryMax", o.MetadataRetryMax, 6},
		{"MetadataRetryBackoff", o.MetadataRetryBackoff, 700 * time.Millisecond},
		{"ProducerRetryMax", o.ProducerRetryMax, 8},
		{"ProducerRetryBackoff", o.ProducerRetryBackoff, 90 * time.Millisecond},
		{"ConsumerRetryBackoff", o.ConsumerRetryBackoff, 3 * time.Second},
		{"Verbose", o.Verbose, true},
		{"Version", o.Version, "2.8.1"},
		{"ReplicationFactor", o.ReplicationFactor, int16(2)},
		{"TLS.Enabled", o.TLS.Enabled, true},
		{"TLS.CertPEM", string(o.TLS.CertPEM), string(cert)},
		{"TLS.KeyPEM", string(o.TLS.KeyPEM), string(key)},
		{"TLS.RootCAsPEM", len(o.TLS.RootCAsPEM), 1},
		{"SASL", o.SASL.Enabled && o.SASL.User == "orderer" && o.SASL.Password == "s3cret", true},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}
