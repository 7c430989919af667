package kafka

import (
	"fmt"
	"log/slog"
	"time"
)

// Defaults, taken from Fabric's sample orderer.yaml so that an empty Options
// behaves like an unconfigured Fabric orderer.
const (
	DefaultVersion              = "0.10.2.0"
	DefaultNetworkTimeout       = 10 * time.Second
	DefaultMetadataRetryBackoff = 250 * time.Millisecond
	DefaultMetadataRetryMax     = 3
	DefaultProducerRetryBackoff = 100 * time.Millisecond
	DefaultProducerRetryMax     = 3
	DefaultConsumerRetryBackoff = 2 * time.Second
	DefaultReplicationFactor    = 3
	DefaultClientID             = "kord"
	// DefaultMaxMessageBytes is the producer's ceiling for one record
	// batch (99 MiB), as in Fabric; the broker's own limit may be lower.
	DefaultMaxMessageBytes = 99 * 1024 * 1024
)

// Options configures every client this package makes. Zero values take the
// defaults above; a negative retry count means no retries.
type Options struct {
	// Brokers are "host:port" bootstrap addresses.
	Brokers []string
	// Version is the Kafka protocol version, as in Fabric's Kafka.Version
	// ("0.10.2.0", "1.0.0", "2.8.1"...). It is a starting point: see
	// Negotiate.
	Version string
	// Verbose routes sarama's own log lines to Logger (at debug level).
	// sarama's logger is process-wide, so this takes effect once, for all
	// clients.
	Verbose bool

	DialTimeout, ReadTimeout, WriteTimeout time.Duration

	MetadataRetryBackoff time.Duration
	MetadataRetryMax     int
	ProducerRetryBackoff time.Duration
	ProducerRetryMax     int
	ConsumerRetryBackoff time.Duration

	TLS  TLSOptions
	SASL SASLOptions

	ClientID string
	// ReplicationFactor is what callers pass to EnsureTopic by default.
	ReplicationFactor int16
	// MaxMessageBytes caps a produced record batch; NewProducer lowers it
	// further to the broker's message.max.bytes when it can read it.
	MaxMessageBytes int
	// Retry is the schedule for start-up steps, see Retry.
	Retry RetryPolicy

	// Logger receives this package's decisions (version negotiation,
	// limits). Nil means slog.Default().
	Logger *slog.Logger
}

// TLSOptions holds PEM material inline, as Fabric's orderer.yaml does.
type TLSOptions struct {
	Enabled bool
	// CertPEM and KeyPEM are the client certificate and key; both or
	// neither.
	CertPEM, KeyPEM []byte
	// RootCAsPEM are the CAs trusted for the brokers' certificates. Empty
	// means the system pool.
	RootCAsPEM [][]byte
}

// SASLOptions enables SASL/PLAIN.
type SASLOptions struct {
	Enabled        bool
	User, Password string
}

// RetryPolicy is Fabric's two-speed retry schedule for start-up steps.
type RetryPolicy struct {
	ShortInterval, ShortTotal time.Duration
	LongInterval, LongTotal   time.Duration
}

// DefaultRetryPolicy is Fabric's default schedule: every 5 s for 10 min,
// then every 5 min for 12 h.
var DefaultRetryPolicy = RetryPolicy{
	ShortInterval: 5 * time.Second,
	ShortTotal:    10 * time.Minute,
	LongInterval:  5 * time.Minute,
	LongTotal:     12 * time.Hour,
}

func (o Options) withDefaults() Options {
	if o.Version == "" {
		o.Version = DefaultVersion
	}
	durDefault(&o.DialTimeout, DefaultNetworkTimeout)
	durDefault(&o.ReadTimeout, DefaultNetworkTimeout)
	durDefault(&o.WriteTimeout, DefaultNetworkTimeout)
	durDefault(&o.MetadataRetryBackoff, DefaultMetadataRetryBackoff)
	durDefault(&o.ProducerRetryBackoff, DefaultProducerRetryBackoff)
	durDefault(&o.ConsumerRetryBackoff, DefaultConsumerRetryBackoff)
	intDefault(&o.MetadataRetryMax, DefaultMetadataRetryMax)
	intDefault(&o.ProducerRetryMax, DefaultProducerRetryMax)
	if o.ClientID == "" {
		o.ClientID = DefaultClientID
	}
	if o.ReplicationFactor == 0 {
		o.ReplicationFactor = DefaultReplicationFactor
	}
	if o.MaxMessageBytes <= 0 {
		o.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if o.Retry == (RetryPolicy{}) {
		o.Retry = DefaultRetryPolicy
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

func durDefault(d *time.Duration, def time.Duration) {
	if *d <= 0 {
		*d = def
	}
}

func intDefault(n *int, def int) {
	switch {
	case *n == 0:
		*n = def
	case *n < 0:
		*n = 0
	}
}

func (o Options) validate() error {
	if len(o.Brokers) == 0 {
		return NonRetriable(fmt.Errorf("kafka: no brokers configured"))
	}
	if o.TLS.Enabled && (len(o.TLS.CertPEM) == 0) != (len(o.TLS.KeyPEM) == 0) {
		return NonRetriable(fmt.Errorf("kafka: TLS client certificate and key must be given together"))
	}
	if o.SASL.Enabled && o.SASL.User == "" {
		return NonRetriable(fmt.Errorf("kafka: SASL/PLAIN enabled without a user"))
	}
	return nil
}
