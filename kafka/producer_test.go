package kafka

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/kordhq/kord/kafka/embedded"
)

func TestConcurrentProduceAndConsume(t *testing.T) {
	c := startCluster(t, embedded.Config{Brokers: 3})
	ctx := testCtx(t, 30*time.Second)
	o := testOptions(c.Addrs())
	o.Version = "0.10.2.0"
	const topic = "mychannel"
	mustEnsure(t, ctx, o, topic, 3)
	p := mustProducer(t, ctx, o)

	const workers, each = 16, 25
	var (
		mu       sync.Mutex
		byOff    = map[int64]string{}
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				val := fmt.Sprintf("w%d-m%d", w, i)
				off, err := p.Produce(ctx, topic, []byte(val))
				if err != nil {
					errOnce.Do(func() { firstErr = err })
					return
				}
				mu.Lock()
				if prev, dup := byOff[off]; dup {
					errOnce.Do(func() { firstErr = fmt.Errorf("offset %d given to %q and %q", off, prev, val) })
				}
				byOff[off] = val
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		t.Fatal(firstErr)
	}
	const total = workers * each
	for off := range int64(total) {
		if _, ok := byOff[off]; !ok {
			t.Fatalf("offset %d never returned; offsets should be 0..%d", off, total-1)
		}
	}

	cons := mustConsumer(t, ctx, o)
	pc, err := cons.ConsumePartition(ctx, topic, 0)
	if err != nil {
		t.Fatal(err)
	}
	recs := readN(t, ctx, pc, total)
	for i, r := range recs {
		if r.Offset != int64(i) {
			t.Fatalf("record %d has offset %d", i, r.Offset)
		}
		if string(r.Key) != RecordKey {
			t.Fatalf("record %d key %q", i, r.Key)
		}
		if string(r.Value) != byOff[r.Offset] {
			t.Fatalf("offset %d holds %q, producer was told %q", r.Offset, r.Value, byOff[r.Offset])
		}
	}
	if hw := pc.HighWatermark(); hw != total {
		t.Errorf("high watermark %d, want %d", hw, total)
	}
	if err := pc.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := <-pc.Records(); ok {
		t.Fatal("records still open after Close")
	}

	// From the middle.
	pc2, err := cons.ConsumePartition(ctx, topic, 250)
	if err != nil {
		t.Fatal(err)
	}
	recs = readN(t, ctx, pc2, 5)
	for i, r := range recs {
		if r.Offset != int64(250+i) || string(r.Value) != byOff[r.Offset] {
			t.Fatalf("from the middle: record %d is offset %d %q", i, r.Offset, r.Value)
		}
	}

	if err := pc2.Close(); err != nil {
		t.Fatal(err)
	}

	// Past the end.
	_, err = cons.ConsumePartition(ctx, topic, 1000)
	if !IsOffsetOutOfRange(err) {
		t.Fatalf("offset 1000: want out of range, got %v", err)
	}
	for _, want := range []string{`"mychannel"`, "1000", "next offset 400"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q should mention %s", err, want)
		}
	}

	// The newest offset is where the next record will be: allowed.
	pc3, err := cons.ConsumePartition(ctx, topic, total)
	if err != nil {
		t.Fatalf("consuming from the next offset: %v", err)
	}
	if off, err := p.Produce(ctx, topic, MarshalConnect()); err != nil || off != total {
		t.Fatalf("produce after: %d, %v", off, err)
	}
	if r := readN(t, ctx, pc3, 1)[0]; r.Offset != total {
		t.Fatalf("got offset %d", r.Offset)
	}
}

func TestProducerClosed(t *testing.T) {
	c := startCluster(t, embedded.Config{})
	ctx := testCtx(t, 20*time.Second)
	o := testOptions(c.Addrs())
	mustEnsure(t, ctx, o, "closed", 1)
	p := mustProducer(t, ctx, o)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if _, err := p.Produce(ctx, "closed", []byte("x")); err == nil || !strings.Contains(err.Error(), ErrClosed.Error()) {
		t.Fatalf("produce after close: %v", err)
	}
}

func TestMessageTooLarge(t *testing.T) {
	c := startCluster(t, embedded.Config{BrokerConfigs: map[string]string{"message.max.bytes": "4096"}})
	ctx := testCtx(t, 20*time.Second)
	o := testOptions(c.Addrs())
	mustEnsure(t, ctx, o, "big", 1)
	p := mustProducer(t, ctx, o)

	if max := p.MaxValueBytes(); max <= 0 || max >= 4096 {
		t.Fatalf("producer did not learn the broker's limit: MaxValueBytes %d", max)
	}
	// Refused before sending.
	_, err := p.Produce(ctx, "big", make([]byte, 8000))
	if !IsMessageTooLarge(err) || IsUnavailable(err) {
		t.Fatalf("8000 bytes: want too large, got %v", err)
	}
	// A burst of messages that fit one by one but not as one batch is
	// split, not refused.
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := p.Produce(ctx, "big", make([]byte, 1000)); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("burst: %v", err)
	}

	// The broker's own answer: a topic whose limit is below the broker's.
	conf, err := NewSaramaConfig(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := sarama.NewClusterAdmin(c.Addrs(), conf)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = admin.Close() }()
	limit := "1024"
	if err := admin.CreateTopic("small", &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1,
		ConfigEntries: map[string]*string{"max.message.bytes": &limit}}, false); err != nil {
		t.Fatal(err)
	}
	_, err = p.Produce(ctx, "small", make([]byte, 2000))
	if !IsMessageTooLarge(err) || IsUnavailable(err) {
		t.Fatalf("broker-refused message: want too large, got %v", err)
	}
	if off, err := p.Produce(ctx, "small", make([]byte, 10)); err != nil || off != 0 {
		t.Fatalf("small message after a refused one: %d, %v", off, err)
	}
}
