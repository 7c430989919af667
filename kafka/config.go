package kafka

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/IBM/sarama"
)

// NewSaramaConfig turns o into a sarama configuration for the brokers in o,
// with the protocol version negotiated against one of them (see Negotiate).
// It is the configuration every Producer, Consumer and EnsureTopic uses; it
// is exported for callers that need a raw sarama client on the same terms.
func NewSaramaConfig(ctx context.Context, o Options) (*sarama.Config, error) {
	o = o.withDefaults()
	if err := o.validate(); err != nil {
		return nil, err
	}
	conf, err := baseConfig(o)
	if err != nil {
		return nil, err
	}
	v, err := Negotiate(ctx, o)
	if err != nil {
		return nil, err
	}
	applyVersion(conf, v)
	if err := conf.Validate(); err != nil {
		return nil, NonRetriable(fmt.Errorf("kafka: invalid client configuration: %w", err))
	}
	return conf, nil
}

func applyVersion(conf *sarama.Config, v sarama.KafkaVersion) {
	conf.Version = v
	// Brokers from 1.0 on take the framed SASL exchange (KIP-152); some
	// recent ones (and kfake) refuse the old unframed one.
	if v.IsAtLeast(sarama.V1_0_0_0) {
		conf.Net.SASL.Version = sarama.SASLHandshakeV1
	} else {
		conf.Net.SASL.Version = sarama.SASLHandshakeV0
	}
}

var verboseOnce sync.Once

// baseConfig holds everything but the protocol version.
func baseConfig(o Options) (*sarama.Config, error) {
	if o.Verbose {
		// sarama.Logger is a package global read without locks by
		// sarama's goroutines; set it once, before the first client.
		verboseOnce.Do(func() { sarama.Logger = slogAdapter{o.Logger.With("logger", "orderer.consensus.kafka.sarama")} })
	}
	conf := sarama.NewConfig()
	conf.ClientID = o.ClientID
	conf.Net.DialTimeout = o.DialTimeout
	conf.Net.ReadTimeout = o.ReadTimeout
	conf.Net.WriteTimeout = o.WriteTimeout
	conf.Metadata.Retry.Backoff = o.MetadataRetryBackoff
	conf.Metadata.Retry.Max = o.MetadataRetryMax
	// The orderer creates its topics explicitly (EnsureTopic); metadata
	// requests must not create them behind its back with broker defaults.
	conf.Metadata.AllowAutoTopicCreation = false

	conf.Producer.RequiredAcks = sarama.WaitForAll
	conf.Producer.Partitioner = sarama.NewManualPartitioner
	conf.Producer.Return.Successes = true
	conf.Producer.Return.Errors = true
	conf.Producer.Retry.Backoff = o.ProducerRetryBackoff
	conf.Producer.Retry.Max = o.ProducerRetryMax
	conf.Producer.MaxMessageBytes = o.MaxMessageBytes
	// The broker waits this long for in-sync replicas; keep it within the
	// read timeout so that a slow ISR shows as a broker error, not as a
	// dropped connection.
	conf.Producer.Timeout = min(o.ReadTimeout/2, 10*time.Second)

	conf.Consumer.Return.Errors = true
	conf.Consumer.Retry.Backoff = o.ConsumerRetryBackoff
	conf.Consumer.Offsets.AutoCommit.Enable = false

	conf.Admin.Timeout = o.ReadTimeout

	if o.TLS.Enabled {
		tc, err := tlsConfig(o.TLS)
		if err != nil {
			return nil, err
		}
		conf.Net.TLS.Enable = true
		conf.Net.TLS.Config = tc
	}
	if o.SASL.Enabled {
		conf.Net.SASL.Enable = true
		conf.Net.SASL.Mechanism = sarama.SASLTypePlaintext
		conf.Net.SASL.User = o.SASL.User
		conf.Net.SASL.Password = o.SASL.Password
		conf.Net.SASL.Handshake = true
	}
	return conf, nil
}

func tlsConfig(t TLSOptions) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if len(t.CertPEM) > 0 {
		cert, err := tls.X509KeyPair(t.CertPEM, t.KeyPEM)
		if err != nil {
			return nil, NonRetriable(fmt.Errorf("kafka: TLS client certificate/key: %w", err))
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	if len(t.RootCAsPEM) > 0 {
		pool := x509.NewCertPool()
		for i, pem := range t.RootCAsPEM {
			if !pool.AppendCertsFromPEM(pem) {
				return nil, NonRetriable(fmt.Errorf("kafka: TLS root CA %d holds no PEM certificate", i))
			}
		}
		tc.RootCAs = pool
	}
	return tc, nil
}

// ctxDialer dials like sarama's own dialer, but every connection it makes is
// closed when ctx ends. Short-lived clients (negotiation, topic admin) use it
// so that cancelling the caller's context interrupts a read or write that
// sarama would otherwise only abandon at its network timeout.
type ctxDialer struct {
	ctx     context.Context
	timeout time.Duration
}

func (d ctxDialer) Dial(network, addr string) (net.Conn, error) {
	nd := net.Dialer{Timeout: d.timeout}
	c, err := nd.DialContext(d.ctx, network, addr)
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(d.ctx, func() { _ = c.Close() })
	return &stopConn{Conn: c, stop: stop}, nil
}

type stopConn struct {
	net.Conn
	stop func() bool
}

func (c *stopConn) Close() error {
	c.stop()
	return c.Conn.Close()
}

func useCtxDialer(ctx context.Context, conf *sarama.Config) {
	conf.Net.Proxy.Enable = true
	conf.Net.Proxy.Dialer = ctxDialer{ctx: ctx, timeout: conf.Net.DialTimeout}
}

// slogAdapter lets sarama's logger write to slog.
type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Print(v ...any)                 { a.l.Debug(fmt.Sprint(v...)) }
func (a slogAdapter) Printf(format string, v ...any) { a.l.Debug(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Println(v ...any)               { a.l.Debug(fmt.Sprint(v...)) }
