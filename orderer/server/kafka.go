package server

import (
	"context"
	"fmt"
	"os"
	"sync"

	"github.com/kordhq/kord/config"
	"github.com/kordhq/kord/kafka"
	"github.com/kordhq/kord/orderer/chain"
)

// kafkaOptions maps orderer.yaml's Kafka section onto the kafka package's options.
func kafkaOptions(k config.Kafka, brokers []string) (kafka.Options, error) {
	o := kafka.Options{
		Brokers:              brokers,
		Version:              k.Version,
		Verbose:              k.Verbose,
		DialTimeout:          k.Retry.NetworkTimeouts.DialTimeout,
		ReadTimeout:          k.Retry.NetworkTimeouts.ReadTimeout,
		WriteTimeout:         k.Retry.NetworkTimeouts.WriteTimeout,
		MetadataRetryBackoff: k.Retry.Metadata.RetryBackoff,
		MetadataRetryMax:     k.Retry.Metadata.RetryMax,
		ProducerRetryBackoff: k.Retry.Producer.RetryBackoff,
		ProducerRetryMax:     k.Retry.Producer.RetryMax,
		ConsumerRetryBackoff: k.Retry.Consumer.RetryBackoff,
		ReplicationFactor:    k.Topic.ReplicationFactor,
		Retry: kafka.RetryPolicy{
			ShortInterval: k.Retry.ShortInterval, ShortTotal: k.Retry.ShortTotal,
			LongInterval: k.Retry.LongInterval, LongTotal: k.Retry.LongTotal,
		},
	}
	if k.TLS.Enabled {
		o.TLS.Enabled = true
		var err error
		if o.TLS.CertPEM, err = pemOf("Kafka.TLS.Certificate", k.TLS.Certificate); err != nil {
			return o, err
		}
		if o.TLS.KeyPEM, err = pemOf("Kafka.TLS.PrivateKey", k.TLS.PrivateKey); err != nil {
			return o, err
		}
		ca, err := pemOf("Kafka.TLS.RootCAs", k.TLS.RootCAs)
		if err != nil {
			return o, err
		}
		if len(ca) > 0 {
			o.TLS.RootCAsPEM = [][]byte{ca}
		}
	}
	if k.SASLPlain.Enabled {
		o.SASL = kafka.SASLOptions{Enabled: true, User: k.SASLPlain.User, Password: k.SASLPlain.Password}
	}
	return o, nil
}

func pemOf(key string, s config.PEMSource) ([]byte, error) {
	if s.File != "" {
		b, err := os.ReadFile(s.File)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
		return b, nil
	}
	return []byte(s.PEM), nil
}

// kafkaClients creates the process's producer and topic admin on first use, so that an orderer
// started while Kafka is down comes up and keeps retrying (through each chain's retry
// schedule) instead of failing to start.
type kafkaClients struct {
	opts kafka.Options

	mu       sync.Mutex
	producer *kafka.Producer
	admin    *kafka.Admin
	// consumers are the chains' live consumers, for their metrics.
	consumers map[*kafka.Consumer]struct{}
}

func (k *kafkaClients) getProducer(ctx context.Context) (*kafka.Producer, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.producer == nil {
		p, err := kafka.NewProducer(ctx, k.opts)
		if err != nil {
			return nil, err
		}
		k.producer = p
	}
	return k.producer, nil
}

// Produce implements chain.Producer.
func (k *kafkaClients) Produce(ctx context.Context, topic string, value []byte) (int64, error) {
	p, err := k.getProducer(ctx)
	if err != nil {
		return 0, err
	}
	return p.Produce(ctx, topic, value)
}

// Enqueue implements chain.Producer.
func (k *kafkaClients) Enqueue(ctx context.Context, topic string, value []byte) (*kafka.Ack, error) {
	p, err := k.getProducer(ctx)
	if err != nil {
		return nil, err
	}
	return p.Enqueue(ctx, topic, value)
}

// consume gives every chain session a consumer of its own, as Fabric does per channel: a
// channel whose broker connections went bad gets new ones with its next session, without
// disturbing the other channels.
func (k *kafkaClients) consume(ctx context.Context, topic string, offset int64) (chain.Partition, error) {
	c, err := kafka.NewConsumer(ctx, k.opts)
	if err != nil {
		return nil, err
	}
	pc, err := c.ConsumePartition(ctx, topic, offset)
	if err != nil {
		_ = c.Close()
		return nil, err
	}
	k.mu.Lock()
	if k.consumers == nil {
		k.consumers = map[*kafka.Consumer]struct{}{}
	}
	k.consumers[c] = struct{}{}
	k.mu.Unlock()
	return ownedPartition{pc, c, k}, nil
}

// ownedPartition closes its consumer with it.
type ownedPartition struct {
	*kafka.PartitionConsumer
	c *kafka.Consumer
	k *kafkaClients
}

func (p ownedPartition) Close() error {
	p.k.mu.Lock()
	delete(p.k.consumers, p.c)
	p.k.mu.Unlock()
	err := p.PartitionConsumer.Close()
	if cerr := p.c.Close(); err == nil {
		err = cerr
	}
	return err
}

func (k *kafkaClients) getAdmin(ctx context.Context) (*kafka.Admin, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.admin == nil {
		a, err := kafka.NewAdmin(ctx, k.opts)
		if err != nil {
			return nil, err
		}
		k.admin = a
	}
	return k.admin, nil
}

func (k *kafkaClients) ensureTopic(ctx context.Context, topic string) error {
	a, err := k.getAdmin(ctx)
	if err != nil {
		return err
	}
	return a.EnsureTopic(ctx, topic, k.opts.ReplicationFactor)
}

func (k *kafkaClients) close() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.producer != nil {
		_ = k.producer.Close()
		k.producer = nil
	}
	if k.admin != nil {
		_ = k.admin.Close()
		k.admin = nil
	}
}
