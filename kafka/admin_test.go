package kafka

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/kordhq/kord/kafka/embedded"
)

func TestEnsureTopic(t *testing.T) {
	c := startCluster(t, embedded.Config{Brokers: 3})
	ctx := testCtx(t, 20*time.Second)
	o := testOptions(c.Addrs())

	mustEnsure(t, ctx, o, "chan1", 3)
	mustEnsure(t, ctx, o, "chan1", 3) // already exists: fine

	conf, err := NewSaramaConfig(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	client, err := sarama.NewClient(c.Addrs(), conf)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = client.Close() }()
	parts, err := client.Partitions("chan1")
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) != 1 || parts[0] != 0 {
		t.Fatalf("partitions %v, want [0]", parts)
	}
	replicas, err := client.Replicas("chan1", 0)
	if err != nil || len(replicas) != 3 {
		t.Fatalf("replicas %v (%v), want 3", replicas, err)
	}

	// More replicas than brokers: refused at once, and Retry does not
	// keep trying.
	start := time.Now()
	err = Retry(ctx, RetryPolicy{ShortInterval: 100 * time.Millisecond, ShortTotal: 10 * time.Second}, "create topic", func(ctx context.Context) error {
		return EnsureTopic(ctx, o, "chan5", 5)
	})
	if err == nil || !IsNonRetriable(err) {
		t.Fatalf("replication factor 5 on 3 brokers: want non-retriable error, got %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("took %s to fail", d)
	}
	if !strings.Contains(err.Error(), "replication factor 5") {
		t.Errorf("error should name the replication factor: %v", err)
	}

	for _, bad := range []string{"", "bad/name", strings.Repeat("a", 250)} {
		if err := EnsureTopic(ctx, o, bad, 1); !IsNonRetriable(err) {
			t.Errorf("topic %q: want non-retriable error, got %v", bad, err)
		}
	}
	if err := EnsureTopic(ctx, o, "rf0", 0); !IsNonRetriable(err) {
		t.Errorf("replication factor 0: want non-retriable error, got %v", err)
	}
}

func TestEnsureTopicUnreachable(t *testing.T) {
	o := testOptions([]string{"127.0.0.1:1"})
	ctx := testCtx(t, 10*time.Second)
	start := time.Now()
	err := EnsureTopic(ctx, o, "x", 1)
	if !IsUnavailable(err) || IsNonRetriable(err) {
		t.Fatalf("want a retriable unavailable error, got %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %s", d)
	}

	// A cancelled context stops the wait for a broker that accepts the
	// connection but never answers.
	ctx2, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	silent := silentListener(t)
	o = testOptions([]string{silent})
	o.DialTimeout, o.ReadTimeout = 30*time.Second, 30*time.Second
	start = time.Now()
	if err := EnsureTopic(ctx2, o, "x", 1); err == nil {
		t.Fatal("no error against a silent broker")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("ctx did not bound the wait: %s", d)
	}
}
