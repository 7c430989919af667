package kafka

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/IBM/sarama"
)

// maxTopicName is Kafka's limit on topic name length.
const maxTopicName = 249

// ValidateTopic checks a topic name against Kafka's rules, so that a bad
// channel ID fails here and not as a broker error.
func ValidateTopic(topic string) error {
	if topic == "" || topic == "." || topic == ".." {
		return fmt.Errorf("kafka: invalid topic name %q", topic)
	}
	if len(topic) > maxTopicName {
		return fmt.Errorf("kafka: invalid topic name %q: longer than %d characters", topic, maxTopicName)
	}
	for _, r := range topic {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
		default:
			return fmt.Errorf("kafka: invalid topic name %q: character %q not allowed", topic, r)
		}
	}
	return nil
}

// EnsureTopic makes sure topic exists with one partition, creating it with
// replicationFactor replicas if needed, and waits until partition 0 has a
// leader. A topic that already exists is success (its shape is not
// checked). It makes one attempt; wrap it in Retry. Errors that retrying
// cannot fix (invalid name, a replication factor above the number of
// brokers, missing rights) are marked NonRetriable.
//
// It connects for this one call; a process that creates topics repeatedly
// keeps an Admin instead.
func EnsureTopic(ctx context.Context, o Options, topic string, replicationFactor int16) error {
	op := fmt.Sprintf("kafka: ensuring topic %q", topic)
	if err := checkTopicArgs(op, topic, replicationFactor); err != nil {
		return err
	}
	o = o.withDefaults()
	// Connections of this short-lived client close when ctx ends, which
	// cuts any wait sarama has no context for.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	conf, err := NewSaramaConfig(ctx, o)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	useCtxDialer(ctx, conf)
	client, err := newClient(ctx, o.Brokers, conf)
	if err != nil {
		return classify(op+": connecting", err)
	}
	defer func() { _ = client.Close() }()
	return ensureTopic(ctx, client, op, topic, replicationFactor, o.ReadTimeout)
}

func checkTopicArgs(op, topic string, replicationFactor int16) error {
	if err := ValidateTopic(topic); err != nil {
		return NonRetriable(err)
	}
	if replicationFactor < 1 {
		return NonRetriable(fmt.Errorf("%s: replication factor %d is not positive", op, replicationFactor))
	}
	return nil
}

func ensureTopic(ctx context.Context, client sarama.Client, op, topic string, rf int16, timeout time.Duration) error {
	if err := createTopic(ctx, client, topic, rf, timeout); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if err := waitForLeader(ctx, client, topic, timeout); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}

// Admin creates topics over one long-lived connection set (the orderer creates a topic for
// every new channel).
type Admin struct {
	client  sarama.Client
	timeout time.Duration
}

// NewAdmin connects to the brokers in o.
func NewAdmin(ctx context.Context, o Options) (*Admin, error) {
	o = o.withDefaults()
	conf, err := NewSaramaConfig(ctx, o)
	if err != nil {
		return nil, fmt.Errorf("kafka: admin: %w", err)
	}
	client, err := newClient(ctx, o.Brokers, conf)
	if err != nil {
		return nil, classify("kafka: admin: connecting", err)
	}
	return &Admin{client: client, timeout: o.ReadTimeout}, nil
}

// EnsureTopic is the package-level EnsureTopic on the admin's connections. Waits without a
// context in sarama are bounded by the network timeouts.
func (a *Admin) EnsureTopic(ctx context.Context, topic string, replicationFactor int16) error {
	op := fmt.Sprintf("kafka: ensuring topic %q", topic)
	if err := checkTopicArgs(op, topic, replicationFactor); err != nil {
		return err
	}
	return ensureTopic(ctx, a.client, op, topic, replicationFactor, a.timeout)
}

// Close releases the connections.
func (a *Admin) Close() error {
	if err := a.client.Close(); err != nil && !errors.Is(err, sarama.ErrClosedClient) {
		return fmt.Errorf("kafka: closing admin: %w", err)
	}
	return nil
}

func createTopic(ctx context.Context, client sarama.Client, topic string, rf int16, timeout time.Duration) error {
	controller, err := client.Controller()
	if err != nil {
		return classify("finding the controller", err)
	}
	req := sarama.NewCreateTopicsRequest(client.Config().Version, map[string]*sarama.TopicDetail{
		topic: {NumPartitions: 1, ReplicationFactor: rf},
	}, timeout/2, false)
	resp, err := controller.CreateTopics(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return classify("creating topic", err)
	}
	te, ok := resp.TopicErrors[topic]
	if !ok || te == nil {
		return fmt.Errorf("creating topic: %w: the controller's answer does not mention the topic", ErrUnavailable)
	}
	switch te.Err {
	case sarama.ErrNoError, sarama.ErrTopicAlreadyExists:
		return nil
	case sarama.ErrNotController, sarama.ErrRequestTimedOut:
		// Retrying reaches the new controller, or finds the topic the
		// timed-out request created after all.
		return fmt.Errorf("creating topic: %w: %w", ErrUnavailable, te)
	case sarama.ErrInvalidReplicationFactor:
		return NonRetriable(fmt.Errorf("creating topic with replication factor %d: %w", rf, te))
	}
	if fatalKErrors[te.Err] {
		return NonRetriable(fmt.Errorf("creating topic: %w", te))
	}
	return fmt.Errorf("creating topic: %w: %w", ErrUnavailable, te)
}

// waitForLeader polls metadata until partition 0 of topic has a leader:
// real brokers create topics asynchronously, and producing before the
// leader is known only burns the producer's few retries.
func waitForLeader(ctx context.Context, client sarama.Client, topic string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	var lastErr error
	for {
		if err := client.RefreshMetadata(topic); err != nil {
			lastErr = err
		} else if _, err := client.Leader(topic, 0); err != nil {
			lastErr = err
		} else {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("topic exists but partition 0 has no leader after %s: %w: %w", limit, ErrUnavailable, lastErr)
		}
		t := time.NewTimer(100 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return errors.Join(ctx.Err(), lastErr)
		case <-t.C:
		}
	}
}
