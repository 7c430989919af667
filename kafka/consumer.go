package kafka

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/IBM/sarama"
)

// Special starting offsets for ConsumePartition, as in sarama.
const (
	OffsetOldest = sarama.OffsetOldest // -2: the first offset still held
	OffsetNewest = sarama.OffsetNewest // -1: the next offset to be written
)

// Record is one record read from partition 0.
type Record struct {
	Offset    int64
	Key       []byte
	Value     []byte
	Timestamp time.Time
}

// Consumer reads single partitions from explicit offsets. It holds one set
// of broker connections shared by all its PartitionConsumers.
type Consumer struct {
	client   sarama.Client
	consumer sarama.Consumer

	mu       sync.Mutex
	closed   bool
	children map[*PartitionConsumer]struct{}
	wg       sync.WaitGroup // ConsumePartition calls that outlived their ctx
}

// NewConsumer connects to the brokers in o.
func NewConsumer(ctx context.Context, o Options) (*Consumer, error) {
	o = o.withDefaults()
	conf, err := NewSaramaConfig(ctx, o)
	if err != nil {
		return nil, fmt.Errorf("kafka: consumer: %w", err)
	}
	client, err := newClient(ctx, o.Brokers, conf)
	if err != nil {
		return nil, classify("kafka: consumer: connecting", err)
	}
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		_ = client.Close()
		return nil, classify("kafka: consumer", err)
	}
	return &Consumer{client: client, consumer: consumer, children: make(map[*PartitionConsumer]struct{})}, nil
}

// ConsumePartition starts reading partition 0 of topic at offset (or at
// OffsetOldest / OffsetNewest). A Consumer reads a topic through one
// PartitionConsumer at a time; close it before starting another. An offset the partition does not hold gives
// an error for which IsOffsetOutOfRange holds, naming topic, offset and the
// range the partition does hold.
func (c *Consumer) ConsumePartition(ctx context.Context, topic string, offset int64) (*PartitionConsumer, error) {
	op := fmt.Sprintf("kafka: consume %q from offset %d", topic, offset)
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, fmt.Errorf("%s: %w", op, ErrClosed)
	}
	c.wg.Add(1)
	c.mu.Unlock()

	type res struct {
		pc  sarama.PartitionConsumer
		err error
	}
	ch := make(chan res)
	abandon := make(chan struct{})
	// sarama's ConsumePartition looks up the leader and the offset range
	// without a context; it runs aside so that ctx can cut the wait. A
	// partition consumer that arrives after ctx ended is closed here, and
	// Consumer.Close waits for this goroutine.
	go func() {
		defer c.wg.Done()
		pc, err := c.consumer.ConsumePartition(topic, 0, offset)
		select {
		case ch <- res{pc, err}:
		case <-abandon:
			if pc != nil {
				_ = pc.Close()
			}
		}
	}()
	var r res
	select {
	case r = <-ch:
	case <-ctx.Done():
		close(abandon)
		return nil, fmt.Errorf("%s: %w", op, ctx.Err())
	}
	if r.err != nil {
		if errors.Is(r.err, sarama.ErrOffsetOutOfRange) {
			return nil, fmt.Errorf("%s: %w", op, c.outOfRange(topic, offset))
		}
		return nil, classify(op, r.err)
	}
	pc := newPartitionConsumer(c, topic, offset, r.pc)
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		_ = pc.shutdown()
		return nil, fmt.Errorf("%s: %w", op, ErrClosed)
	}
	c.children[pc] = struct{}{}
	c.mu.Unlock()
	return pc, nil
}

// outOfRange builds the out-of-range error with the range the partition
// holds, when it can be read.
func (c *Consumer) outOfRange(topic string, offset int64) error {
	oldest, err1 := c.client.GetOffset(topic, 0, sarama.OffsetOldest)
	newest, err2 := c.client.GetOffset(topic, 0, sarama.OffsetNewest)
	if err1 != nil || err2 != nil {
		return fmt.Errorf("%w: topic %q partition 0 has no offset %d", ErrOffsetOutOfRange, topic, offset)
	}
	return fmt.Errorf("%w: topic %q partition 0 has no offset %d (oldest offset %d, next offset %d)",
		ErrOffsetOutOfRange, topic, offset, oldest, newest)
}

// Close stops every PartitionConsumer and releases the connections.
func (c *Consumer) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	children := make([]*PartitionConsumer, 0, len(c.children))
	for pc := range c.children {
		children = append(children, pc)
	}
	c.mu.Unlock()

	var errs []error
	for _, pc := range children {
		if err := pc.shutdown(); err != nil {
			errs = append(errs, err)
		}
	}
	c.wg.Wait()
	if err := c.consumer.Close(); err != nil {
		errs = append(errs, err)
	}
	if err := c.client.Close(); err != nil && !errors.Is(err, sarama.ErrClosedClient) {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("kafka: closing consumer: %w", errors.Join(errs...))
	}
	return nil
}

// PartitionConsumer delivers the records of one partition in offset order.
// Callers must drain both Records and Errors until they are closed (after
// Close, or when the partition can no longer be read, e.g. after an
// out-of-range error).
type PartitionConsumer struct {
	parent *Consumer
	topic  string
	pc     sarama.PartitionConsumer

	records chan Record
	errors  chan error
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
	next    int64 // offset after the last record handed out; forward goroutine only
}

func newPartitionConsumer(parent *Consumer, topic string, offset int64, pc sarama.PartitionConsumer) *PartitionConsumer {
	p := &PartitionConsumer{
		parent:  parent,
		topic:   topic,
		pc:      pc,
		records: make(chan Record),
		errors:  make(chan error, 1),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
		next:    offset,
	}
	go p.forward()
	return p
}

// Records delivers records in offset order. It is closed after Close or when
// reading has stopped for good.
func (p *PartitionConsumer) Records() <-chan Record { return p.records }

// Errors delivers consumption errors. Transient ones (IsUnavailable) are
// followed by sarama's own retries; IsOffsetOutOfRange means reading has
// stopped. It is closed together with Records.
func (p *PartitionConsumer) Errors() <-chan error { return p.errors }

// HighWatermark is the offset after the last record known to be committed
// in the partition, as of the last fetch.
func (p *PartitionConsumer) HighWatermark() int64 { return p.pc.HighWaterMarkOffset() }

// Topic is the topic being read.
func (p *PartitionConsumer) Topic() string { return p.topic }

// Close stops reading and waits until Records and Errors are closed.
func (p *PartitionConsumer) Close() error {
	err := p.shutdown()
	p.parent.mu.Lock()
	delete(p.parent.children, p)
	p.parent.mu.Unlock()
	return err
}

func (p *PartitionConsumer) shutdown() error {
	p.once.Do(func() {
		close(p.stop)
		p.pc.AsyncClose()
	})
	<-p.done
	return nil
}

// forward moves sarama's messages and errors to this consumer's channels
// until sarama closes its own, which it does after AsyncClose or when it
// gives up on the partition.
func (p *PartitionConsumer) forward() {
	defer close(p.done)
	defer close(p.records)
	defer close(p.errors)
	msgs, errs := p.pc.Messages(), p.pc.Errors()
	for msgs != nil || errs != nil {
		select {
		case m, ok := <-msgs:
			if !ok {
				msgs = nil
				continue
			}
			rec := Record{Offset: m.Offset, Key: m.Key, Value: m.Value, Timestamp: m.Timestamp}
			select {
			case p.records <- rec:
				p.next = m.Offset + 1
			case <-p.stop:
			}
		case ce, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			err := p.wrapErr(ce)
			select {
			case p.errors <- err:
			case <-p.stop:
			}
		}
	}
}

func (p *PartitionConsumer) wrapErr(ce *sarama.ConsumerError) error {
	var err error = ce
	if ce != nil && ce.Err != nil {
		err = ce.Err
	}
	op := fmt.Sprintf("kafka: consuming %q", p.topic)
	if errors.Is(err, sarama.ErrOffsetOutOfRange) {
		return fmt.Errorf("%s: %w: topic %q partition 0 no longer holds offset %d: %w",
			op, ErrOffsetOutOfRange, p.topic, p.next, err)
	}
	return classify(op, err)
}
