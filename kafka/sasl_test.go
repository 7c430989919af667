package kafka

import (
	"crypto/tls"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kordhq/kord/kafka/embedded"
)

func TestSASLPlain(t *testing.T) {
	cfg := embedded.Config{}
	cfg.SASLPlain.User, cfg.SASLPlain.Password = "orderer", "s3cret"
	c := startCluster(t, cfg)
	ctx := testCtx(t, 20*time.Second)
	o := testOptions(c.Addrs())
	o.Version = "0.10.2.0"
	o.SASL = SASLOptions{Enabled: true, User: "orderer", Password: "s3cret"}
	mustEnsure(t, ctx, o, "secured", 1)
	p := mustProducer(t, ctx, o)
	if _, err := p.Produce(ctx, "secured", MarshalConnect()); err != nil {
		t.Fatal(err)
	}
	checkWrongPassword(t, o)
}

// TestTLSAndSASL runs against brokers that want both TLS and SASL/PLAIN: produce, consume,
// and a clear, non-retriable error for a wrong password.
func TestTLSAndSASL(t *testing.T) {
	caPEM, certPEM, keyPEM := testPKI(t)
	serverCert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	cfg := embedded.Config{TLS: &tls.Config{Certificates: []tls.Certificate{serverCert}, MinVersion: tls.VersionTLS12}}
	cfg.SASLPlain.User, cfg.SASLPlain.Password = "orderer", "s3cret"
	c := startCluster(t, cfg)
	ctx := testCtx(t, 20*time.Second)
	o := testOptions(c.Addrs())
	o.TLS = TLSOptions{Enabled: true, RootCAsPEM: [][]byte{caPEM}}
	o.SASL = SASLOptions{Enabled: true, User: "orderer", Password: "s3cret"}
	mustEnsure(t, ctx, o, "both", 1)
	p := mustProducer(t, ctx, o)
	off, err := p.Produce(ctx, "both", MarshalConnect())
	if err != nil {
		t.Fatal(err)
	}
	cons := mustConsumer(t, ctx, o)
	pc, err := cons.ConsumePartition(ctx, "both", off)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if recs := readN(t, ctx, pc, 1); recs[0].Offset != off {
		t.Fatalf("read offset %d, want %d", recs[0].Offset, off)
	}
	// sarama's own metrics of the client, as the orderer exports them.
	if ms := p.Metrics(); len(ms) == 0 {
		t.Error("producer has no client metrics")
	}
	checkWrongPassword(t, o)

	// Plaintext client against the TLS listener: refused, not hung.
	plain := o
	plain.TLS = TLSOptions{}
	if _, err := NewProducer(ctx, plain); err == nil {
		t.Error("plaintext client accepted by a TLS broker")
	}
}

func checkWrongPassword(t *testing.T, o Options) {
	t.Helper()
	ctx := testCtx(t, 20*time.Second)
	o.SASL.Password = "wrong"
	start := time.Now()
	_, err := NewProducer(ctx, o)
	if err == nil {
		t.Fatal("wrong password accepted")
	}
	t.Logf("wrong password after %s: %v", time.Since(start).Round(time.Millisecond), err)
	if !errors.Is(err, ErrAuthentication) || !IsNonRetriable(err) || IsUnavailable(err) {
		t.Errorf("wrong password: want a non-retriable authentication error, got %v", err)
	}
	for _, want := range []string{"SASL/PLAIN", `"orderer"`, "Kafka.SASLPlain.Password"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("wrong-password error does not mention %s: %v", want, err)
		}
	}
	if err := EnsureTopic(ctx, o, "other", 1); !errors.Is(err, ErrAuthentication) {
		t.Errorf("EnsureTopic with a wrong password: %v", err)
	}
	if _, err := NewConsumer(ctx, o); !errors.Is(err, ErrAuthentication) {
		t.Errorf("NewConsumer with a wrong password: %v", err)
	}
}
