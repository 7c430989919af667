package kafka

import (
	"context"
	"testing"
	"time"

	"github.com/kordhq/kord/kafka/embedded"
)

func TestProduceWhenKafkaDown(t *testing.T) {
	c := startCluster(t, embedded.Config{Brokers: 1})
	ctx := testCtx(t, 30*time.Second)
	o := testOptions(c.Addrs())
	mustEnsure(t, ctx, o, "down", 1)
	p := mustProducer(t, ctx, o)
	if _, err := p.Produce(ctx, "down", MarshalConnect()); err != nil {
		t.Fatal(err)
	}
	c.Close()

	start := time.Now()
	_, err := p.Produce(ctx, "down", MarshalConnect())
	if !IsUnavailable(err) {
		t.Fatalf("want an unavailable error, got %v", err)
	}
	if IsMessageTooLarge(err) {
		t.Fatalf("misclassified: %v", err)
	}
	t.Logf("produce failed after %s: %v", time.Since(start).Round(time.Millisecond), err)
	if d := time.Since(start); d > 15*time.Second {
		t.Fatalf("took %s", d)
	}

	// A new producer cannot even start.
	start = time.Now()
	if _, err := NewProducer(ctx, o); !IsUnavailable(err) {
		t.Fatalf("NewProducer with Kafka down: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("NewProducer took %s", d)
	}
	// Close does not hang either.
	done := make(chan struct{})
	go func() { _ = p.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("Close hung with Kafka down")
	}
}

func TestConsumerSeesKafkaGoAway(t *testing.T) {
	c := startCluster(t, embedded.Config{Brokers: 1})
	ctx := testCtx(t, 30*time.Second)
	o := testOptions(c.Addrs())
	mustEnsure(t, ctx, o, "away", 1)
	p := mustProducer(t, ctx, o)
	if _, err := p.Produce(ctx, "away", MarshalConnect()); err != nil {
		t.Fatal(err)
	}
	cons := mustConsumer(t, ctx, o)
	pc, err := cons.ConsumePartition(ctx, "away", 0)
	if err != nil {
		t.Fatal(err)
	}
	readN(t, ctx, pc, 1)
	c.Close()

	start := time.Now()
	select {
	case err, ok := <-pc.Errors():
		if !ok {
			t.Fatal("errors closed without an error")
		}
		if !IsUnavailable(err) {
			t.Fatalf("want an unavailable error, got %v", err)
		}
		t.Logf("consumer error after %s: %v", time.Since(start).Round(time.Millisecond), err)
	case r, ok := <-pc.Records():
		t.Fatalf("unexpected record %v (open %v)", r, ok)
	case <-ctx.Done():
		t.Fatal("no consumer error after the cluster went away")
	}
	done := make(chan struct{})
	go func() { _ = cons.Close(); close(done) }()
	for {
		select {
		case <-done:
			return
		case <-pc.Errors(): // keep draining while closing
		case <-time.After(15 * time.Second):
			t.Fatal("consumer Close hung with Kafka down")
		}
	}
}

// TestRecoverAfterRestart: a producer and a partition consumer made before
// an outage work again once the cluster is back on the same addresses,
// without being recreated.
func TestRecoverAfterRestart(t *testing.T) {
	dir := t.TempDir()
	c, err := embedded.Start(context.Background(), embedded.Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	ports, err := c.Ports()
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t, 40*time.Second)
	o := testOptions(c.Addrs())
	mustEnsure(t, ctx, o, "phoenix", 1)
	p := mustProducer(t, ctx, o)
	if _, err := p.Produce(ctx, "phoenix", MarshalTimeToCut(0)); err != nil {
		t.Fatal(err)
	}
	cons := mustConsumer(t, ctx, o)
	pc, err := cons.ConsumePartition(ctx, "phoenix", 0)
	if err != nil {
		t.Fatal(err)
	}
	readN(t, ctx, pc, 1)
	c.Close()

	if _, err := p.Produce(ctx, "phoenix", MarshalTimeToCut(99)); !IsUnavailable(err) {
		t.Fatalf("while down: %v", err)
	}
	c2, err := embedded.Start(context.Background(), embedded.Config{DataDir: dir, Ports: ports})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c2.Close)

	var off int64
	err = Retry(ctx, RetryPolicy{ShortInterval: 100 * time.Millisecond, ShortTotal: 10 * time.Second}, "produce after restart",
		func(ctx context.Context) error {
			var err error
			off, err = p.Produce(ctx, "phoenix", MarshalTimeToCut(1))
			return err
		})
	if err != nil {
		t.Fatal(err)
	}
	// The consumer resumes by itself; errors seen during the outage are
	// drained on the way.
	for {
		select {
		case r, ok := <-pc.Records():
			if !ok {
				t.Fatal("records closed")
			}
			m, err := Unmarshal(r.Value)
			if err != nil {
				t.Fatal(err)
			}
			if m.GetTimeToCut().GetBlockNumber() == 1 {
				if r.Offset != off {
					t.Fatalf("record at %d, producer said %d", r.Offset, off)
				}
				return
			}
		case err := <-pc.Errors():
			if !IsUnavailable(err) {
				t.Fatalf("unexpected consumer error: %v", err)
			}
		case <-ctx.Done():
			t.Fatal("consumer did not resume after the restart")
		}
	}
}
