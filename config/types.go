package config

import "time"

// Field tags understood by the loader (`kord:"..."`, comma separated):
//
//	path   the value names a file or directory; ORDERER_<KEY>_FILE sets the
//	       path itself instead of reading the value out of the file
//	size   an unsigned integer that also accepts sizes such as "10 MB"
//	secret never shown in error messages
//	-      not a configuration key

// TopLevel is the whole orderer configuration: orderer.yaml merged with the
// ORDERER_* environment. Field names mirror Fabric's orderer.yaml keys.
type TopLevel struct {
	General              General
	FileLedger           FileLedger
	Kafka                Kafka
	Debug                Debug
	Consensus            Section // etcdraft settings: accepted, unused by a Kafka orderer
	Operations           Operations
	Metrics              Metrics
	ChannelParticipation ChannelParticipation
	Admin                Admin

	// SourceFile is the orderer.yaml the configuration came from; empty when
	// it was built from bytes (DefaultYAML) or by Defaults.
	SourceFile string `kord:"-"`
}

// General holds the settings common to every orderer type.
type General struct {
	ListenAddress     string
	ListenPort        uint16
	TLS               TLS
	Cluster           Cluster // etcdraft only: accepted, unused
	Keepalive         Keepalive
	ConnectionTimeout time.Duration
	MaxRecvMsgSize    uint32 `kord:"size"`
	MaxSendMsgSize    uint32 `kord:"size"`
	// GenesisMethod and GenesisFile are the Fabric 1.x names; when the 2.x
	// names are not set, loading copies them over (with a warning).
	GenesisMethod   string
	GenesisFile     string `kord:"path"`
	BootstrapMethod string // "file" or "none"
	BootstrapFile   string `kord:"path"`
	Profile         Profile
	LocalMSPDir     string `kord:"path"`
	LocalMSPID      string
	BCCSP           Section // kept as given; kord signs with the software provider
	Authentication  Authentication
	LogLevel        string // Fabric 1.x; accepted so old environments load
	LogFormat       string
}

// TLS configures a TLS server (General, Operations, Admin).
type TLS struct {
	Enabled               bool
	PrivateKey            string   `kord:"path"`
	Certificate           string   `kord:"path"`
	RootCAs               []string `kord:"path"`
	ClientAuthRequired    bool
	ClientRootCAs         []string `kord:"path"`
	TLSHandshakeTimeShift time.Duration
}

// Cluster is Fabric's etcdraft cluster section; kord parses it so that stock
// files load, and does not use it.
type Cluster struct {
	ListenAddress                        string
	ListenPort                           uint16
	ServerCertificate                    string   `kord:"path"`
	ServerPrivateKey                     string   `kord:"path"`
	ClientCertificate                    string   `kord:"path"`
	ClientPrivateKey                     string   `kord:"path"`
	RootCAs                              []string `kord:"path"`
	DialTimeout                          time.Duration
	RPCTimeout                           time.Duration
	ReplicationBufferSize                int
	ReplicationPullTimeout               time.Duration
	ReplicationRetryTimeout              time.Duration
	ReplicationBackgroundRefreshInterval time.Duration
	ReplicationMaxRetries                int
	SendBufferSize                       int
	CertExpirationWarningThreshold       time.Duration
	TLSHandshakeTimeShift                time.Duration
}

// Keepalive configures the gRPC server's keepalive enforcement.
type Keepalive struct {
	ServerMinInterval time.Duration
	ServerInterval    time.Duration
	ServerTimeout     time.Duration
}

// Profile configures the Go pprof HTTP endpoint.
type Profile struct {
	Enabled bool
	Address string
}

// Authentication configures how client messages are authenticated.
type Authentication struct {
	TimeWindow         time.Duration
	NoExpirationChecks bool
}

// FileLedger configures where blocks are stored.
type FileLedger struct {
	Location string `kord:"path"`
	Prefix   string // accepted for compatibility; Fabric 2.x ignores it too
}

// Kafka configures the orderer's Kafka client.
type Kafka struct {
	Retry   Retry
	Verbose bool
	// Version is the broker protocol version in sarama's notation
	// (0.10.2.0, 1.0.0, 2.8.1, ...); loading normalises it, see
	// ParseKafkaVersion.
	Version   string
	TLS       KafkaTLS
	SASLPlain SASLPlain
	Topic     Topic
	// Brokers is a kord extension: when non-empty it replaces the broker
	// addresses of the channel configuration for this orderer only.
	Brokers []string
}

// Retry controls how long and how often the orderer retries Kafka.
type Retry struct {
	ShortInterval   time.Duration
	ShortTotal      time.Duration
	LongInterval    time.Duration
	LongTotal       time.Duration
	NetworkTimeouts NetworkTimeouts
	Metadata        Metadata
	Producer        Producer
	Consumer        Consumer
}

// NetworkTimeouts are the Kafka client's socket timeouts.
type NetworkTimeouts struct {
	DialTimeout  time.Duration
	ReadTimeout  time.Duration
	WriteTimeout time.Duration
}

// Metadata controls metadata request retries during leader elections.
type Metadata struct {
	RetryMax     int
	RetryBackoff time.Duration
}

// Producer controls produce retries.
type Producer struct {
	RetryMax     int
	RetryBackoff time.Duration
}

// Consumer controls consume retries.
type Consumer struct {
	RetryBackoff time.Duration
}

// Topic holds the settings for topics the orderer creates.
type Topic struct {
	ReplicationFactor int16
}

// KafkaTLS configures TLS towards the brokers. Unlike the server TLS
// sections, its credentials are PEM text, given inline or through a File
// sub-key.
type KafkaTLS struct {
	Enabled     bool
	PrivateKey  PEMSource `kord:"secret"`
	Certificate PEMSource
	RootCAs     PEMSource
}

// PEMSource is PEM text given either inline (`PrivateKey: |` followed by the
// PEM) or by file (`PrivateKey: {File: path}`, or
// ORDERER_KAFKA_TLS_PRIVATEKEY_FILE). When Kafka TLS is enabled, loading
// reads File into PEM, so consumers only look at PEM.
type PEMSource struct {
	PEM  string
	File string
}

// SASLPlain configures SASL/PLAIN authentication towards the brokers.
type SASLPlain struct {
	Enabled  bool
	User     string
	Password string `kord:"secret"`
}

// Debug holds Fabric's trace directories.
type Debug struct {
	BroadcastTraceDir string `kord:"path"`
	DeliverTraceDir   string `kord:"path"`
}

// Operations configures the operations (health, metrics) HTTP endpoint.
type Operations struct {
	ListenAddress string
	TLS           TLS
}

// Metrics selects the metrics provider.
type Metrics struct {
	Provider string // prometheus, statsd or disabled
	Statsd   Statsd
}

// Statsd configures the statsd metrics provider.
type Statsd struct {
	Network       string
	Address       string
	WriteInterval time.Duration
	Prefix        string
}

// Admin configures Fabric's admin endpoint.
type Admin struct {
	ListenAddress string
	TLS           TLS
}

// ChannelParticipation configures Fabric's channel participation API.
type ChannelParticipation struct {
	Enabled            bool
	MaxRequestBodySize uint32 `kord:"size"`
}

// Section is a part of orderer.yaml that kord accepts, so that stock files
// load, but does not interpret (BCCSP, Consensus).
type Section struct {
	// Tree is the YAML subtree as decoded: maps, slices and scalars; nil when
	// the file has no such section.
	Tree any
	// Env holds the ORDERER_ variables addressed below the section, keyed by
	// the rest of the name (ORDERER_GENERAL_BCCSP_SW_HASH gives "SW_HASH"),
	// because the nesting of an underscore-joined name cannot be recovered.
	Env map[string]string
}

// Defaults returns kord's defaults: the values of DefaultYAML, which are
// Fabric v2.5's sample values (BootstrapFile "genesisblock" is Fabric's
// built-in default for an empty BootstrapFile).
func Defaults() *TopLevel {
	return &TopLevel{
		General: General{
			ListenAddress: "127.0.0.1",
			ListenPort:    7050,
			TLS: TLS{
				PrivateKey:  "tls/server.key",
				Certificate: "tls/server.crt",
				RootCAs:     []string{"tls/ca.crt"},
			},
			Cluster: Cluster{
				DialTimeout:                          5 * time.Second,
				RPCTimeout:                           7 * time.Second,
				ReplicationBufferSize:                20971520,
				ReplicationPullTimeout:               5 * time.Second,
				ReplicationRetryTimeout:              5 * time.Second,
				ReplicationBackgroundRefreshInterval: 5 * time.Minute,
				ReplicationMaxRetries:                12,
				SendBufferSize:                       100,
				CertExpirationWarningThreshold:       7 * 24 * time.Hour,
			},
			Keepalive: Keepalive{
				ServerMinInterval: 60 * time.Second,
				ServerInterval:    7200 * time.Second,
				ServerTimeout:     20 * time.Second,
			},
			MaxRecvMsgSize:  104857600,
			MaxSendMsgSize:  104857600,
			BootstrapMethod: "file",
			BootstrapFile:   "genesisblock",
			Profile: Profile{
				Address: "0.0.0.0:6060",
			},
			LocalMSPDir: "msp",
			LocalMSPID:  "SampleOrg",
			Authentication: Authentication{
				TimeWindow: 15 * time.Minute,
			},
		},
		FileLedger: FileLedger{
			Location: "/var/hyperledger/production/orderer",
		},
		Kafka: Kafka{
			Retry: Retry{
				ShortInterval: 5 * time.Second,
				ShortTotal:    10 * time.Minute,
				LongInterval:  5 * time.Minute,
				LongTotal:     12 * time.Hour,
				NetworkTimeouts: NetworkTimeouts{
					DialTimeout:  10 * time.Second,
					ReadTimeout:  10 * time.Second,
					WriteTimeout: 10 * time.Second,
				},
				Metadata: Metadata{RetryMax: 3, RetryBackoff: 250 * time.Millisecond},
				Producer: Producer{RetryMax: 3, RetryBackoff: 100 * time.Millisecond},
				Consumer: Consumer{RetryBackoff: 2 * time.Second},
			},
			Version: "0.10.2.0",
			Topic:   Topic{ReplicationFactor: 3},
		},
		Operations: Operations{
			ListenAddress: "127.0.0.1:8443",
		},
		Metrics: Metrics{
			Provider: "disabled",
			Statsd: Statsd{
				Network:       "udp",
				Address:       "127.0.0.1:8125",
				WriteInterval: 30 * time.Second,
			},
		},
		ChannelParticipation: ChannelParticipation{
			MaxRequestBodySize: 1024 * 1024,
		},
		Admin: Admin{
			ListenAddress: "127.0.0.1:9443",
			TLS:           TLS{ClientAuthRequired: true},
		},
	}
}
