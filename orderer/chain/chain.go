// Package chain owns the Kafka consenter of one channel.
//
// It has two halves. Machine (machine.go) is the ordering rules as a pure state machine:
// records of the channel's partition in, blocks and records to post out; the conformance
// vectors recorded from Fabric feed it directly. Chain (this file) is its driver: it owns the
// Kafka session (topic, CONNECT, partition consumer), the batch timer, block signing and
// ledger writes, and the ingress side that Broadcast calls (Order).
//
// A session is: make sure the topic exists, post CONNECT, rebuild the machine from the
// ledger's last block, consume from the offset after the last one persisted. Any failure ends
// the session and a new one starts after a pause, so recovering from a Kafka outage, a
// failed write or a restart of the process all take the same path: the ledger is the only
// state that survives, and consumption resumes from its Kafka metadata.
package chain

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang/protobuf/proto"
	cb "github.com/hyperledger/fabric-protos-go/common"
	ab "github.com/hyperledger/fabric-protos-go/orderer"

	"github.com/kordhq/kord/kafka"
	"github.com/kordhq/kord/orderer/blocks"
	"github.com/kordhq/kord/orderer/channelconfig"
	"github.com/kordhq/kord/orderer/msgprocessor"
)

// Store is the channel's ledger as the chain uses it.
type Store interface {
	Height() uint64
	Block(n uint64) (*cb.Block, error)
	Append(blocks ...*cb.Block) error
}

// Producer produces records to partition 0 of a topic.
type Producer interface {
	// Produce writes one record and waits for Kafka's acknowledgement.
	Produce(ctx context.Context, topic string, value []byte) (int64, error)
	// Enqueue writes one record without waiting; records enqueued in sequence keep their order.
	Enqueue(ctx context.Context, topic string, value []byte) (*kafka.Ack, error)
}

// Partition is a running consumer of partition 0 of the channel's topic.
type Partition interface {
	Records() <-chan kafka.Record
	Errors() <-chan error
	HighWatermark() int64
	Close() error
}

// Options wire a chain to its surroundings.
type Options struct {
	ChannelID string
	Store     Store
	Producer  Producer
	// Consume starts a partition consumer of topic at offset.
	Consume func(ctx context.Context, topic string, offset int64) (Partition, error)
	// EnsureTopic makes sure the channel's topic exists (called at each session start).
	EnsureTopic func(ctx context.Context, topic string) error
	Signer      blocks.Signer
	Revalidator Revalidator
	Retry       kafka.RetryPolicy
	// OnNewChannel is called for a system-channel ORDERER_TRANSACTION before the block that
	// carries it is written, so that a crash in between replays the record and finds the
	// channel already there. It must be idempotent.
	OnNewChannel func(ctx context.Context, nc *NewChannel) error
	// OnEvent, if set, is told of every notable record (for logs and metrics).
	OnEvent func(Event)
	// OnBlocks, if set, is told of every batch of blocks written, with the Kafka metadata of
	// the last one.
	OnBlocks func(written []*cb.Block, last *ab.KafkaMetadata)
	// Metrics, if set, is told about commits, consumption and the Kafka connection.
	Metrics Metrics
	Log     *slog.Logger
	// ProduceTimeout bounds Order when Kafka does not answer (default 30s).
	ProduceTimeout time.Duration
}

// Chain runs one channel.
type Chain struct {
	o   Options
	log *slog.Logger

	cfg       atomic.Pointer[channelconfig.Values]
	connected atomic.Bool
	lastErr   atomic.Pointer[error]

	mu   sync.Mutex
	gate chan struct{} // closed while new messages may enter; open (not closed) while a re-submitted config is pending

	cancel context.CancelFunc
	done   chan struct{}
}

// New prepares a chain; Start runs it.
func New(o Options) (*Chain, error) {
	if o.ProduceTimeout <= 0 {
		o.ProduceTimeout = 30 * time.Second
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	// "logger" names the logger under orderer/logging (Fabric's name for the Kafka consenter);
	// every line of the chain carries its channel.
	c := &Chain{o: o, log: o.Log.With("logger", "orderer.consensus.kafka", "channel", o.ChannelID), gate: closedGate()}
	st, err := LoadState(c.o.ChannelID, c.o.Store)
	if err != nil {
		return nil, err
	}
	c.cfg.Store(st.Config)
	return c, nil
}

func closedGate() chan struct{} {
	g := make(chan struct{})
	close(g)
	return g
}

// Start runs the chain until Stop.
func (c *Chain) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	c.done = make(chan struct{})
	go c.run(ctx)
}

// Stop ends the chain and waits for it.
func (c *Chain) Stop() {
	if c.cancel == nil {
		return
	}
	c.cancel()
	<-c.done
}

// ChannelID names the chain's channel.
func (c *Chain) ChannelID() string { return c.o.ChannelID }

// Config is the channel config in force.
func (c *Chain) Config() *channelconfig.Values { return c.cfg.Load() }

// Connected reports whether the chain consumes its partition.
func (c *Chain) Connected() bool { return c.connected.Load() }

// Err is why the chain is not consuming: the last failed attempt to connect, the consumer's
// last error, or the reason the last session ended; nil once it consumes again.
func (c *Chain) Err() error {
	if p := c.lastErr.Load(); p != nil {
		return *p
	}
	return nil
}

// Configure produces a config envelope (CONFIG, or ORDERER_TRANSACTION on the system channel)
// and waits for Kafka's acknowledgement.
func (c *Chain) Configure(ctx context.Context, env *cb.Envelope, configSeq uint64) error {
	ack, err := c.enqueue(ctx, env, configSeq, ab.KafkaMessageRegular_CONFIG)
	if err != nil {
		return err
	}
	return ack.Wait(ctx)
}

// EnqueueConfig hands a config envelope (CONFIG, or ORDERER_TRANSACTION on the system
// channel) to Kafka without waiting for the acknowledgement.
func (c *Chain) EnqueueConfig(ctx context.Context, env *cb.Envelope, configSeq uint64) (*Ack, error) {
	return c.enqueue(ctx, env, configSeq, ab.KafkaMessageRegular_CONFIG)
}

// Enqueue hands a normal envelope to Kafka without waiting for the acknowledgement.
func (c *Chain) Enqueue(ctx context.Context, env *cb.Envelope, configSeq uint64) (*Ack, error) {
	return c.enqueue(ctx, env, configSeq, ab.KafkaMessageRegular_NORMAL)
}

// Ack is an enqueued envelope's pending acknowledgement.
type Ack struct {
	c       *Chain
	ack     *kafka.Ack
	size    int
	timeout time.Duration
}

// Wait returns nil once Kafka acknowledged the envelope, or a refusal saying why not.
func (a *Ack) Wait(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	if _, err := a.ack.Wait(ctx); err != nil {
		return a.c.produceError(a.size, err)
	}
	return nil
}

func (c *Chain) enqueue(ctx context.Context, env *cb.Envelope, seq uint64, class ab.KafkaMessageRegular_Class) (*Ack, error) {
	if err := c.waitGate(ctx); err != nil {
		return nil, err
	}
	if !c.connected.Load() {
		return nil, fmt.Errorf("%w: channel %s: backing Kafka cluster has not completed booting (or is unreachable); try again later", msgprocessor.ErrUnavailable, c.o.ChannelID)
	}
	payload, err := proto.Marshal(env)
	if err != nil {
		return nil, fmt.Errorf("%w: envelope cannot be encoded: %v", msgprocessor.ErrBadRequest, err)
	}
	qctx, cancel := context.WithTimeout(ctx, c.o.ProduceTimeout)
	defer cancel()
	ack, err := c.o.Producer.Enqueue(qctx, c.o.ChannelID, kafka.MarshalRegular(payload, seq, class, 0))
	if err != nil {
		return nil, c.produceError(len(payload), err)
	}
	return &Ack{c: c, ack: ack, size: len(payload), timeout: c.o.ProduceTimeout}, nil
}

func (c *Chain) produceError(size int, err error) error {
	if kafka.IsMessageTooLarge(err) {
		return fmt.Errorf("%w: channel %s: envelope of %d bytes is larger than the Kafka brokers accept (message.max.bytes): %v", msgprocessor.ErrBadRequest, c.o.ChannelID, size, err)
	}
	return fmt.Errorf("%w: channel %s: producing to Kafka: %v", msgprocessor.ErrUnavailable, c.o.ChannelID, err)
}

// waitGate holds new messages back while a re-submitted config message is on its way.
func (c *Chain) waitGate(ctx context.Context) error {
	c.mu.Lock()
	g := c.gate
	c.mu.Unlock()
	select {
	case <-g:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w: channel %s: waiting for a re-submitted config message: %v", msgprocessor.ErrUnavailable, c.o.ChannelID, ctx.Err())
	}
}

func (c *Chain) setGate(pending bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	open := isClosed(c.gate)
	switch {
	case pending && open:
		c.gate = make(chan struct{})
	case !pending && !open:
		close(c.gate)
	}
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// LoadState reads what a channel's machine starts from out of its ledger: the last block, the
// config block it points at, and that block's config.
func LoadState(channelID string, store Store) (State, error) {
	h := store.Height()
	if h == 0 {
		return State{}, fmt.Errorf("channel %s: ledger is empty", channelID)
	}
	last, err := store.Block(h - 1)
	if err != nil {
		return State{}, fmt.Errorf("channel %s: reading last block: %w", channelID, err)
	}
	idx, err := blocks.LastConfigIndex(last)
	if err != nil {
		return State{}, fmt.Errorf("channel %s: %w", channelID, err)
	}
	cfgBlock := last
	if idx != last.Header.Number {
		if cfgBlock, err = store.Block(idx); err != nil {
			return State{}, fmt.Errorf("channel %s: reading config block %d: %w", channelID, idx, err)
		}
	}
	cfg, err := channelconfig.FromBlock(cfgBlock)
	if err != nil {
		return State{}, fmt.Errorf("channel %s: %w", channelID, err)
	}
	cfg.ChannelID = channelID
	return State{LastBlock: last, LastConfigIndex: idx, Config: cfg}, nil
}

func (c *Chain) run(ctx context.Context) {
	defer close(c.done)
	pause := c.o.Retry.ShortInterval
	if pause <= 0 {
		pause = 5 * time.Second
	}
	for {
		err := c.session(ctx)
		c.setConnected(false)
		if ctx.Err() != nil {
			return
		}
		c.lastErr.Store(&err)
		c.log.Error("chain session ended; retrying", "err", err, "retry_in", pause)
		select {
		case <-ctx.Done():
			return
		case <-time.After(pause):
		}
	}
}

// session connects to Kafka and consumes until an error or ctx ends.
func (c *Chain) session(ctx context.Context) error {
	topic := c.o.ChannelID
	if c.o.EnsureTopic != nil {
		if err := c.retry(ctx, "create topic "+topic, func(ctx context.Context) error {
			return c.o.EnsureTopic(ctx, topic)
		}); err != nil {
			return err
		}
	}
	if err := c.retry(ctx, "post CONNECT to "+topic, func(ctx context.Context) error {
		_, err := c.o.Producer.Produce(ctx, topic, kafka.MarshalConnect())
		return err
	}); err != nil {
		return err
	}
	st, err := LoadState(c.o.ChannelID, c.o.Store)
	if err != nil {
		return err
	}
	m, err := NewMachine(st, c.o.Revalidator)
	if err != nil {
		return err
	}
	c.cfg.Store(m.Config())
	c.setGate(m.ConfigPending())

	var part Partition
	if err := c.retry(ctx, "consume "+topic, func(ctx context.Context) error {
		p, err := c.o.Consume(ctx, topic, m.StartOffset())
		if err != nil {
			if kafka.IsOffsetOutOfRange(err) {
				return kafka.NonRetriable(err)
			}
			return err
		}
		part = p
		return nil
	}); err != nil {
		return err
	}
	defer part.Close()
	c.lastErr.Store(nil)
	c.setConnected(true)
	c.log.Info("chain connected to Kafka", "start_offset", m.StartOffset(), "height", m.Height())
	var fill fillClock
	rc := newReconnector(ctx, c)
	defer rc.stop()

	var timer *time.Timer
	var timerC <-chan time.Time
	stopTimer := func() {
		if timer != nil {
			timer.Stop()
			timer, timerC = nil, nil
		}
	}
	defer stopTimer()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err, ok := <-part.Errors():
			if !ok {
				return errors.New("partition consumer closed")
			}
			if kafka.IsOffsetOutOfRange(err) {
				return fmt.Errorf("channel %s: %w", topic, err)
			}
			// sarama keeps retrying by itself; Broadcast is refused until records flow again.
			// As Fabric, post CONNECT (again, until it gets through), so that records flow as
			// soon as Kafka is back even if nobody else writes to the topic.
			err = fmt.Errorf("consuming %s: %w", topic, err)
			c.lastErr.Store(&err)
			c.setConnected(false)
			c.log.Warn("Kafka consumer error", "err", err)
			rc.kick()
		case err := <-rc.done():
			rc.finished(err, c.connected.Load())
		case <-rc.retryC():
			rc.retry(c.connected.Load())
		case rec, ok := <-part.Records():
			if !ok {
				return errors.New("partition consumer closed")
			}
			if !c.connected.Load() {
				c.lastErr.Store(nil)
				c.setConnected(true)
				c.log.Info("chain consuming Kafka again", "offset", rec.Offset)
			}
			rd := m.Step(rec.Offset, rec.Value)
			if c.o.Metrics != nil {
				fill.step(time.Now(), m.Pending(), &rd, func(d time.Duration) { c.o.Metrics.BlockFilled(c.o.ChannelID, d) })
			}
			if err := c.apply(ctx, rd); err != nil {
				return err
			}
			if c.o.Metrics != nil {
				c.o.Metrics.Consumed(c.o.ChannelID, rec.Offset, part.HighWatermark())
			}
			switch rd.Timer {
			case TimerStart:
				stopTimer()
				timer = time.NewTimer(m.Config().BatchTimeout)
				timerC = timer.C
			case TimerStop:
				stopTimer()
			}
			c.setGate(m.ConfigPending())
		case <-timerC:
			timer, timerC = nil, nil
			ttc := m.TimerFired()
			if err := c.produce(ctx, ttc); err != nil {
				// Without the TIME_TO_CUT the pending batch would wait for the next message;
				// try again after another timeout instead.
				c.log.Warn("posting time-to-cut failed; will retry", "block", ttc.GetTimeToCut().GetBlockNumber(), "err", err)
				timer = time.NewTimer(m.Config().BatchTimeout)
				timerC = timer.C
			}
		}
	}
}

// apply carries out one step's Ready: blocks first (one ledger batch), then posts.
func (c *Chain) apply(ctx context.Context, rd Ready) error {
	for _, ev := range rd.Events {
		c.logEvent(ev)
	}
	if len(rd.Blocks) > 0 {
		out := make([]*cb.Block, 0, len(rd.Blocks))
		for _, b := range rd.Blocks {
			if b.NewChannel != nil && c.o.OnNewChannel != nil {
				if err := c.o.OnNewChannel(ctx, b.NewChannel); err != nil {
					return fmt.Errorf("channel %s: creating channel %s: %w", c.o.ChannelID, b.NewChannel.ChannelID, err)
				}
			}
			if err := blocks.Finish(b.Block, b.LastConfig, b.Kafka, c.o.Signer); err != nil {
				return fmt.Errorf("channel %s: %w", c.o.ChannelID, err)
			}
			out = append(out, b.Block)
			if b.Config != nil {
				c.cfg.Store(b.Config)
			}
		}
		began := time.Now()
		if err := c.o.Store.Append(out...); err != nil {
			return fmt.Errorf("channel %s: writing blocks %d..%d: %w", c.o.ChannelID, out[0].Header.Number, out[len(out)-1].Header.Number, err)
		}
		if c.o.Metrics != nil {
			c.o.Metrics.Committed(c.o.ChannelID, out, rd.Blocks[len(rd.Blocks)-1].Kafka, time.Since(began))
		}
		if c.o.OnBlocks != nil {
			c.o.OnBlocks(out, rd.Blocks[len(rd.Blocks)-1].Kafka)
		}
	}
	for _, msg := range rd.Post {
		if err := c.produce(ctx, msg); err != nil {
			// A re-submission that does not reach Kafka is lost for this orderer, as in
			// Fabric; another orderer consuming the same record re-submits it too.
			c.log.Warn("re-submission failed", "err", err)
		}
	}
	return nil
}

// setConnected records whether the chain consumes its partition, telling Metrics of changes.
func (c *Chain) setConnected(up bool) {
	if c.connected.Swap(up) != up && c.o.Metrics != nil {
		c.o.Metrics.Connected(c.o.ChannelID, up)
	}
}

// retry runs one start-up step on the chain's retry schedule. Each failed attempt becomes
// the chain's Err (so that /healthz says what is wrong while the step is retried) and is
// logged when its reason changes.
func (c *Chain) retry(ctx context.Context, step string, fn func(ctx context.Context) error) error {
	last := ""
	return kafka.Retry(ctx, c.o.Retry, step, func(ctx context.Context) error {
		err := fn(ctx)
		if err != nil && ctx.Err() == nil {
			err := fmt.Errorf("%s: %w", step, err)
			c.lastErr.Store(&err)
			if msg := err.Error(); msg != last {
				last = msg
				c.log.Warn("Kafka step failed; retrying", "step", step, "err", err)
			}
		}
		return err
	})
}

func (c *Chain) produce(ctx context.Context, msg *ab.KafkaMessage) error {
	value, err := proto.Marshal(msg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, c.o.ProduceTimeout)
	defer cancel()
	_, err = c.o.Producer.Produce(ctx, c.o.ChannelID, value)
	return err
}

func (c *Chain) logEvent(ev Event) {
	if c.o.OnEvent != nil {
		c.o.OnEvent(ev)
	}
	switch ev.Kind {
	case EventConnect, EventStaleTTC, EventIgnored, EventDuplicate:
		c.log.Debug("record", "offset", ev.Offset, "kind", ev.Kind.String(), "detail", ev.Detail)
	default:
		c.log.Warn("record", "offset", ev.Offset, "kind", ev.Kind.String(), "detail", ev.Detail)
	}
}

// reconnector posts CONNECT records after a consumer error until one gets through, one at a
// time, each in a goroutine it owns; the session loop drives it and stop waits for the
// goroutine.
type reconnector struct {
	ctx    context.Context
	cancel context.CancelFunc
	c      *Chain
	wg     sync.WaitGroup
	result chan error       // the post in flight, nil when none
	timer  *time.Timer      // pause before the next attempt
	timerC <-chan time.Time // nil when no attempt is scheduled
}

func newReconnector(ctx context.Context, c *Chain) *reconnector {
	ctx, cancel := context.WithCancel(ctx)
	return &reconnector{ctx: ctx, cancel: cancel, c: c}
}

// kick posts a CONNECT unless one is already in flight or scheduled.
func (r *reconnector) kick() {
	if r.result != nil || r.timerC != nil {
		return
	}
	ch := make(chan error, 1)
	r.result = ch
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		ch <- r.c.produce(r.ctx, &ab.KafkaMessage{Type: &ab.KafkaMessage_Connect{Connect: &ab.KafkaMessageConnect{}}})
	}()
}

func (r *reconnector) done() <-chan error { return r.result }

func (r *reconnector) retryC() <-chan time.Time { return r.timerC }

// finished takes the outcome of a post: on failure, and while still disconnected, the next
// attempt follows after the retry interval.
func (r *reconnector) finished(err error, connected bool) {
	r.result = nil
	if err == nil || connected {
		return
	}
	pause := r.c.o.Retry.ShortInterval
	if pause <= 0 {
		pause = 5 * time.Second
	}
	r.timer = time.NewTimer(pause)
	r.timerC = r.timer.C
}

func (r *reconnector) retry(connected bool) {
	r.timer, r.timerC = nil, nil
	if !connected {
		r.kick()
	}
}

func (r *reconnector) stop() {
	r.cancel()
	if r.timer != nil {
		r.timer.Stop()
	}
	r.wg.Wait()
}
