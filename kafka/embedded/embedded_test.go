package embedded_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/kordhq/kord/kafka"
	"github.com/kordhq/kord/kafka/embedded"
)

func options(addrs []string) kafka.Options {
	return kafka.Options{
		Brokers:          addrs,
		DialTimeout:      time.Second,
		ReadTimeout:      2 * time.Second,
		WriteTimeout:     2 * time.Second,
		MetadataRetryMax: 2, MetadataRetryBackoff: 50 * time.Millisecond,
		ProducerRetryMax: 2, ProducerRetryBackoff: 50 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

func TestPersistAcrossRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := t.TempDir()

	c, err := embedded.Start(ctx, embedded.Config{Brokers: 3, DataDir: dir, SyncWrites: true})
	if err != nil {
		t.Fatal(err)
	}
	ports, err := c.Ports()
	if err != nil {
		t.Fatal(err)
	}
	o := options(c.Addrs())
	if err := kafka.EnsureTopic(ctx, o, "persisted", 3); err != nil {
		t.Fatal(err)
	}
	p, err := kafka.NewProducer(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	want := [][]byte{kafka.MarshalConnect(), kafka.MarshalTimeToCut(1), kafka.MarshalTimeToCut(2)}
	for i, v := range want {
		off, err := p.Produce(ctx, "persisted", v)
		if err != nil || off != int64(i) {
			t.Fatalf("produce %d: offset %d, %v", i, off, err)
		}
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	c.Close()

	c2, err := embedded.Start(ctx, embedded.Config{Ports: ports, DataDir: dir})
	if err != nil {
		t.Fatalf("restart on ports %v: %v", ports, err)
	}
	defer c2.Close()
	if got := c2.Addrs(); len(got) != 3 || got[0] != c.Addrs()[0] {
		t.Fatalf("restarted on %v, was %v", got, c.Addrs())
	}
	// The topic survived: creating it again is a no-op.
	if err := kafka.EnsureTopic(ctx, o, "persisted", 3); err != nil {
		t.Fatal(err)
	}
	cons, err := kafka.NewConsumer(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cons.Close() }()
	pc, err := cons.ConsumePartition(ctx, "persisted", kafka.OffsetOldest)
	if err != nil {
		t.Fatal(err)
	}
	for i := range want {
		select {
		case r := <-pc.Records():
			if r.Offset != int64(i) || string(r.Value) != string(want[i]) {
				t.Fatalf("record %d: offset %d value %x", i, r.Offset, r.Value)
			}
		case err := <-pc.Errors():
			t.Fatal(err)
		case <-ctx.Done():
			t.Fatalf("record %d never came back after restart", i)
		}
	}
}

func TestNoAutoCreate(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := embedded.Start(ctx, embedded.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if len(c.Addrs()) != 1 {
		t.Fatalf("default should be one broker, got %v", c.Addrs())
	}
	p, err := kafka.NewProducer(ctx, options(c.Addrs()))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = p.Close() }()
	if _, err := p.Produce(ctx, "never-created", kafka.MarshalConnect()); err == nil {
		t.Fatal("producing to a missing topic created it")
	}
}

func TestBadConfig(t *testing.T) {
	ctx := context.Background()
	for _, cfg := range []embedded.Config{
		{Host: "not-an-ip"},
		{Brokers: 1, Ports: []int{0, 0}},
		{Ports: []int{70000}},
	} {
		if c, err := embedded.Start(ctx, cfg); err == nil {
			c.Close()
			t.Errorf("%+v: started", cfg)
		}
	}
}
