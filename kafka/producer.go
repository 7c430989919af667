package kafka

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/IBM/sarama"
)

// batchOverhead is what a record batch adds around its records (61 bytes in
// the v2 format) plus slack, and recordOverhead what one record adds around
// its value with key "0". The broker's limit applies to the whole batch,
// the producer's (sarama's) to the records in it.
const (
	batchOverhead  = 128
	recordOverhead = 64
)

// Producer writes records to partition 0 of any topic. It is safe for
// concurrent use and pipelined: many Produce calls may be in flight at once
// (sarama batches them), and each call waits only for its own
// acknowledgement.
type Producer struct {
	client   sarama.Client
	ap       sarama.AsyncProducer
	maxValue int

	// sendMu makes Close wait for Produce calls that are handing a message
	// to sarama: sarama's input channel must not be written after
	// AsyncClose.
	sendMu    sync.RWMutex
	closed    bool
	closing   chan struct{}
	closeOnce sync.Once
	closeErr  error
	wg        sync.WaitGroup // the result dispatcher
}

type result struct {
	offset int64
	err    error
}

// NewProducer connects to the brokers in o. It asks the brokers for their
// message.max.bytes and keeps batches below it (so that a burst of small
// messages is never refused as one oversized batch); when that cannot be
// read, o.MaxMessageBytes is used as is.
func NewProducer(ctx context.Context, o Options) (*Producer, error) {
	o = o.withDefaults()
	conf, err := NewSaramaConfig(ctx, o)
	if err != nil {
		return nil, fmt.Errorf("kafka: producer: %w", err)
	}
	configureOrdering(conf)
	client, err := newClient(ctx, o.Brokers, conf)
	if err != nil {
		return nil, classify("kafka: producer: connecting", err)
	}
	if brokerMax, err := brokerMaxMessageBytes(client); err != nil {
		o.Logger.Info("kafka: could not read the broker's message.max.bytes; using the configured limit",
			"limit", conf.Producer.MaxMessageBytes, "error", err)
	} else if limit := brokerMax - batchOverhead; limit > 0 && limit < conf.Producer.MaxMessageBytes {
		conf.Producer.MaxMessageBytes = limit
	}
	ap, err := sarama.NewAsyncProducerFromClient(client)
	if err != nil {
		_ = client.Close()
		return nil, classify("kafka: producer", err)
	}
	p := &Producer{
		client:   client,
		ap:       ap,
		maxValue: conf.Producer.MaxMessageBytes - recordOverhead,
		closing:  make(chan struct{}),
	}
	p.wg.Add(1)
	go p.dispatch()
	return p, nil
}

// configureOrdering makes retries unable to reorder or duplicate records. With several
// requests in flight per broker (sarama's default is 5) a request that fails and is retried
// can land after one sent later, which would break the order of a Broadcast stream; and a
// request whose acknowledgement was lost is written again by the retry, which would order an
// acknowledged envelope twice. One request in flight per broker keeps the order (sarama
// batches whatever queues behind it, so a pipelined stream still fills the request), and the
// idempotent producer (brokers from 0.11 on) lets the broker drop a retried batch it already
// has.
func configureOrdering(conf *sarama.Config) {
	conf.Net.MaxOpenRequests = 1
	if conf.Version.IsAtLeast(sarama.V0_11_0_0) && conf.Producer.Retry.Max > 0 {
		conf.Producer.Idempotent = true
	}
}

// MaxValueBytes is the largest record value this producer sends; larger
// ones are refused with an error for which IsMessageTooLarge holds. The
// orderer can refuse such envelopes at ingress.
func (p *Producer) MaxValueBytes() int { return p.maxValue }

// dispatch hands each acknowledgement or failure to the Produce call that
// waits for it. It ends when sarama closes both channels after AsyncClose.
func (p *Producer) dispatch() {
	defer p.wg.Done()
	succ, errs := p.ap.Successes(), p.ap.Errors()
	for succ != nil || errs != nil {
		select {
		case m, ok := <-succ:
			if !ok {
				succ = nil
				continue
			}
			deliver(m, result{offset: m.Offset})
		case pe, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			deliver(pe.Msg, result{err: pe.Err})
		}
	}
}

func deliver(m *sarama.ProducerMessage, r result) {
	if m == nil {
		return
	}
	if ch, ok := m.Metadata.(chan result); ok {
		ch <- r // buffered for exactly this one result
	}
}

// Produce writes value to partition 0 of topic with key "0" and waits for
// all in-sync replicas to acknowledge it. It returns the offset Kafka
// assigned. When ctx ends first the message may still be written.
func (p *Producer) Produce(ctx context.Context, topic string, value []byte) (int64, error) {
	ack, err := p.Enqueue(ctx, topic, value)
	if err != nil {
		return 0, err
	}
	return ack.Wait(ctx)
}

// Ack is the pending acknowledgement of an enqueued record.
type Ack struct {
	topic string
	done  chan result
}

// Enqueue hands value to the producer and returns without waiting for Kafka.
// Records enqueued one after the other by the same goroutine reach the
// partition in that order, also across retries after a broker failure (see
// configureOrdering), which is how a Broadcast stream keeps its envelopes in
// the order they were sent while many are in flight.
func (p *Producer) Enqueue(ctx context.Context, topic string, value []byte) (*Ack, error) {
	if len(value) > p.maxValue {
		return nil, fmt.Errorf("%s: %w: %d bytes, limit %d", produceOp(topic), ErrMessageTooLarge, len(value), p.maxValue)
	}
	done := make(chan result, 1)
	msg := &sarama.ProducerMessage{
		Topic:     topic,
		Partition: 0,
		Key:       sarama.StringEncoder(RecordKey),
		Value:     sarama.ByteEncoder(value),
		Metadata:  done,
	}
	if err := p.send(ctx, msg); err != nil {
		return nil, fmt.Errorf("%s: %w", produceOp(topic), err)
	}
	return &Ack{topic: topic, done: done}, nil
}

// produceOp names a produce in errors; built only on failure, off the hot path.
func produceOp(topic string) string { return fmt.Sprintf("kafka: produce to %q", topic) }

// Wait returns the record's offset once Kafka acknowledged it, or why not.
func (a *Ack) Wait(ctx context.Context) (int64, error) {
	return a.WaitOr(ctx, nil, nil)
}

// ErrGaveUp is returned by WaitOr when its stop channel closed first.
var ErrGaveUp = errors.New("stopped waiting for the acknowledgement")

// WaitOr is Wait that also gives up when stop is closed or timeout fires (either may be nil),
// without the contexts a caller would otherwise derive per record for the same effect.
func (a *Ack) WaitOr(ctx context.Context, stop <-chan struct{}, timeout <-chan time.Time) (int64, error) {
	select {
	case r := <-a.done:
		if r.err != nil {
			return 0, classify(produceOp(a.topic), r.err)
		}
		return r.offset, nil
	case <-ctx.Done():
		return 0, fmt.Errorf("%s: waiting for acknowledgement: %w", produceOp(a.topic), ctx.Err())
	case <-stop:
		return 0, fmt.Errorf("%s: %w", produceOp(a.topic), ErrGaveUp)
	case <-timeout:
		return 0, fmt.Errorf("%s: waiting for acknowledgement: %w", produceOp(a.topic), context.DeadlineExceeded)
	}
}

func (p *Producer) send(ctx context.Context, msg *sarama.ProducerMessage) error {
	p.sendMu.RLock()
	defer p.sendMu.RUnlock()
	if p.closed {
		return ErrClosed
	}
	select {
	case p.ap.Input() <- msg:
		return nil
	case <-p.closing:
		return ErrClosed
	case <-ctx.Done():
		return fmt.Errorf("queueing message: %w", ctx.Err())
	}
}

// Close stops accepting messages, waits for those already queued to be
// acknowledged or to fail (bounded by the producer retry settings), and
// releases the connections. Produce calls still waiting get their result.
func (p *Producer) Close() error {
	p.closeOnce.Do(func() {
		close(p.closing)
		p.sendMu.Lock()
		p.closed = true
		p.sendMu.Unlock()
		p.ap.AsyncClose()
		p.wg.Wait()
		if err := p.client.Close(); err != nil && !errors.Is(err, sarama.ErrClosedClient) {
			p.closeErr = fmt.Errorf("kafka: closing producer: %w", err)
		}
	})
	return p.closeErr
}

// newClient makes a sarama client while honouring ctx: sarama's constructor
// blocks on metadata (bounded only by its timeouts and retries), so it runs
// aside, and a client that arrives after ctx ended is closed.
func newClient(ctx context.Context, addrs []string, conf *sarama.Config) (sarama.Client, error) {
	type res struct {
		c   sarama.Client
		err error
	}
	ch := make(chan res, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c, err := sarama.NewClient(addrs, conf)
		ch <- res{c, err}
	}()
	select {
	case r := <-ch:
		return r.c, explainConnectError(ctx, addrs, conf, r.err)
	case <-ctx.Done():
		// The constructor is bounded by the network timeouts and the
		// metadata retries; clean up behind it without making the
		// caller wait.
		go func() {
			wg.Wait()
			if r := <-ch; r.c != nil {
				_ = r.c.Close()
			}
		}()
		return nil, ctx.Err()
	}
}

// brokerMaxMessageBytes reads message.max.bytes from one broker.
func brokerMaxMessageBytes(client sarama.Client) (int, error) {
	brokers := client.Brokers()
	if len(brokers) == 0 {
		return 0, sarama.ErrOutOfBrokers
	}
	b := brokers[0]
	if ok, _ := b.Connected(); !ok {
		if err := b.Open(client.Config()); err != nil && !errors.Is(err, sarama.ErrAlreadyConnected) {
			return 0, err
		}
	}
	req := &sarama.DescribeConfigsRequest{
		Version: describeConfigsVersion(client.Config().Version),
		Resources: []*sarama.ConfigResource{{
			Type:        sarama.BrokerResource,
			Name:        strconv.Itoa(int(b.ID())),
			ConfigNames: []string{"message.max.bytes"},
		}},
	}
	resp, err := b.DescribeConfigs(req)
	if err != nil {
		return 0, err
	}
	for _, r := range resp.Resources {
		if r.ErrorCode != 0 {
			return 0, fmt.Errorf("describing broker %d: %w: %s", b.ID(), sarama.KError(r.ErrorCode), r.ErrorMsg)
		}
		for _, e := range r.Configs {
			if e.Name == "message.max.bytes" {
				n, err := strconv.Atoi(e.Value)
				if err != nil || n <= 0 {
					return 0, fmt.Errorf("broker %d: message.max.bytes %q is not a positive integer", b.ID(), e.Value)
				}
				return n, nil
			}
		}
	}
	return 0, fmt.Errorf("broker %d did not report message.max.bytes", b.ID())
}

func describeConfigsVersion(v sarama.KafkaVersion) int16 {
	switch {
	case v.IsAtLeast(sarama.V2_0_0_0):
		return 2
	case v.IsAtLeast(sarama.V1_1_0_0):
		return 1
	default:
		return 0
	}
}
