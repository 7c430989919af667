// Package embedded runs an in-process Kafka-compatible cluster (franz-go's
// kfake) for `orderer dev` and for tests. It speaks the Kafka wire protocol
// over real TCP sockets, so kord talks to it exactly as to a real cluster.
//
// Like a production cluster set up for Fabric, it does not create topics on
// first use: the orderer creates each channel's topic itself. With DataDir
// set, topics and records are kept on disk and survive a restart on the same
// directory.
//
// kfake implements the protocol of Kafka 0.11 and later only (no produce
// before v3, no fetch before v4); the kafka package negotiates accordingly.
package embedded

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Config describes the cluster to start. The zero value is one broker on an
// ephemeral port of 127.0.0.1, in memory.
type Config struct {
	// Brokers is the number of brokers; 0 means len(Ports), or 1.
	Brokers int
	// Ports are the brokers' listening ports; 0, or a missing entry, means
	// an ephemeral port. To restart on the same addresses pass the ports
	// Addrs reported.
	Ports []int
	// Host is the address listened on and advertised to clients; empty
	// means 127.0.0.1. It must be an address clients can reach.
	Host string
	// DataDir, when set, keeps topics and records on disk and reloads them
	// on start.
	DataDir string
	// SyncWrites fsyncs every produced batch (with DataDir), so nothing
	// acknowledged is lost if the process dies rather than closes.
	SyncWrites bool
	// AutoCreateTopics lets metadata requests create missing topics, as a
	// Kafka broker with auto.create.topics.enable does.
	AutoCreateTopics bool
	// BrokerConfigs sets broker configuration, e.g. "message.max.bytes".
	BrokerConfigs map[string]string
	// TLS, when set, makes the brokers listen with TLS only.
	TLS *tls.Config
	// SASLPlain, when User is set, requires SASL/PLAIN with these
	// credentials.
	SASLPlain struct{ User, Password string }
}

// Cluster is a running embedded cluster.
type Cluster struct {
	c     *kfake.Cluster
	addrs []string
	once  sync.Once
}

// Start starts a cluster. ctx only bounds the start-up (loading DataDir);
// the cluster runs until Close.
func Start(ctx context.Context, cfg Config) (*Cluster, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("embedded kafka: %w", err)
	}
	n := cfg.Brokers
	if n <= 0 {
		n = max(len(cfg.Ports), 1)
	}
	if len(cfg.Ports) > n {
		return nil, fmt.Errorf("embedded kafka: %d ports given for %d brokers", len(cfg.Ports), n)
	}
	host := cfg.Host
	if host == "" {
		host = "127.0.0.1"
	}
	if net.ParseIP(host) == nil {
		return nil, fmt.Errorf("embedded kafka: host %q is not an IP address", host)
	}
	ports := make([]int, n)
	copy(ports, cfg.Ports)
	for _, p := range ports {
		if p < 0 || p > 65535 {
			return nil, fmt.Errorf("embedded kafka: invalid port %d", p)
		}
	}

	opts := []kfake.Opt{
		kfake.NumBrokers(n),
		kfake.Ports(ports...),
		// kfake always asks for 127.0.0.1; the listen function moves it
		// to the configured host, which then is also what metadata
		// advertises.
		kfake.ListenFn(func(network, addr string) (net.Listener, error) {
			_, port, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			return net.Listen(network, net.JoinHostPort(host, port))
		}),
		kfake.DefaultNumPartitions(1),
	}
	if cfg.DataDir != "" {
		opts = append(opts, kfake.DataDir(cfg.DataDir))
		if cfg.SyncWrites {
			opts = append(opts, kfake.SyncWrites())
		}
	}
	if cfg.AutoCreateTopics {
		opts = append(opts, kfake.AllowAutoTopicCreation())
	}
	if len(cfg.BrokerConfigs) > 0 {
		opts = append(opts, kfake.BrokerConfigs(cfg.BrokerConfigs))
	}
	if cfg.TLS != nil {
		opts = append(opts, kfake.TLS(cfg.TLS))
	}
	if cfg.SASLPlain.User != "" {
		opts = append(opts, kfake.EnableSASL(), kfake.Superuser("PLAIN", cfg.SASLPlain.User, cfg.SASLPlain.Password))
	}

	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("embedded kafka: starting %d brokers on %s (ports %v, data dir %q): %w", n, host, ports, cfg.DataDir, err)
	}
	return &Cluster{c: c, addrs: c.ListenAddrs()}, nil
}

// Addrs are the brokers' "host:port" addresses.
func (c *Cluster) Addrs() []string { return append([]string(nil), c.addrs...) }

// Ports are the brokers' ports, for a restart on the same addresses.
func (c *Cluster) Ports() ([]int, error) {
	out := make([]int, 0, len(c.addrs))
	for _, a := range c.addrs {
		_, p, err := net.SplitHostPort(a)
		if err != nil {
			return nil, fmt.Errorf("embedded kafka: address %q: %w", a, err)
		}
		n, err := strconv.Atoi(p)
		if err != nil {
			return nil, fmt.Errorf("embedded kafka: address %q: %w", a, err)
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, errors.New("embedded kafka: no brokers")
	}
	return out, nil
}

// Kfake exposes the underlying cluster for tests that inject faults.
func (c *Cluster) Kfake() *kfake.Cluster { return c.c }

// Close stops the cluster, dropping every client connection, and with
// DataDir writes its state to disk. It is safe to call more than once.
func (c *Cluster) Close() {
	c.once.Do(c.c.Close)
}
