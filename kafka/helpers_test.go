package kafka

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/kordhq/kord/kafka/embedded"
)

func startCluster(t *testing.T, cfg embedded.Config) *embedded.Cluster {
	t.Helper()
	c, err := embedded.Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("starting embedded cluster: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// testOptions has short timeouts so that failure paths end quickly.
func testOptions(addrs []string) Options {
	return Options{
		Brokers:              addrs,
		Version:              "1.0.0",
		DialTimeout:          time.Second,
		ReadTimeout:          2 * time.Second,
		WriteTimeout:         2 * time.Second,
		MetadataRetryBackoff: 50 * time.Millisecond,
		MetadataRetryMax:     2,
		ProducerRetryBackoff: 50 * time.Millisecond,
		ProducerRetryMax:     2,
		ConsumerRetryBackoff: 100 * time.Millisecond,
		Retry:                RetryPolicy{ShortInterval: 50 * time.Millisecond, ShortTotal: 2 * time.Second},
		Logger:               slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

func testCtx(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func mustEnsure(t *testing.T, ctx context.Context, o Options, topic string, rf int16) {
	t.Helper()
	if err := EnsureTopic(ctx, o, topic, rf); err != nil {
		t.Fatalf("EnsureTopic(%q): %v", topic, err)
	}
}

func mustProducer(t *testing.T, ctx context.Context, o Options) *Producer {
	t.Helper()
	p, err := NewProducer(ctx, o)
	if err != nil {
		t.Fatalf("NewProducer: %v", err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func mustConsumer(t *testing.T, ctx context.Context, o Options) *Consumer {
	t.Helper()
	c, err := NewConsumer(ctx, o)
	if err != nil {
		t.Fatalf("NewConsumer: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// readN reads n records or fails when ctx ends or an error arrives.
func readN(t *testing.T, ctx context.Context, pc *PartitionConsumer, n int) []Record {
	t.Helper()
	var out []Record
	for len(out) < n {
		select {
		case r, ok := <-pc.Records():
			if !ok {
				t.Fatalf("records closed after %d of %d", len(out), n)
			}
			out = append(out, r)
		case err := <-pc.Errors():
			if err != nil {
				t.Fatalf("consumer error after %d of %d records: %v", len(out), n, err)
			}
		case <-ctx.Done():
			t.Fatalf("timed out after %d of %d records: %v", len(out), n, ctx.Err())
		}
	}
	return out
}
