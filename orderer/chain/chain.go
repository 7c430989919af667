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
	// lost ends when the chain loses its connection to Kafka, so that Broadcasts waiting for
	// acknowledgements answer at once instead of at ProduceTimeout; a new one is made for
	// every connection.
	lostMu   sync.Mutex
	lost     context.Context
	loseConn context.CancelFunc

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
	c.lost, c.loseConn = context.WithCancel(context.Background())
	c.loseConn() // not connected yet
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
	ack, err := c.enqueue(ctx, env, nil, configSeq, ab.KafkaMessageRegular_CONFIG)
	if err != nil {
		return err
	}
	return ack.Wait(ctx)
}

// EnqueueConfig hands a config envelope (CONFIG, or ORDERER_TRANSACTION on the system
// channel) to Kafka without waiting for the acknowledgement.
func (c *Chain) EnqueueConfig(ctx context.Context, env *cb.Envelope, configSeq uint64) (*Ack, error) {
	return c.enqueue(ctx, env, nil, configSeq, ab.KafkaMessageRegular_CONFIG)
}

// Enqueue hands a normal envelope to Kafka without waiting for the acknowledgement. raw, when
// not nil, is env's canonical encoding and is produced as it is.
func (c *Chain) Enqueue(ctx context.Context, env *cb.Envelope, raw []byte, configSeq uint64) (*Ack, error) {
	return c.enqueue(ctx, env, raw, configSeq, ab.KafkaMessageRegular_NORMAL)
}

// Ack is an enqueued envelope's pending acknowledgement.
type Ack struct {
	c       *Chain
	ack     *kafka.Ack
	size    int
	timeout time.Duration
	lost    context.Context
}

// Wait returns nil once Kafka acknowledged the envelope, or a refusal saying why not. It
// gives up when the chain loses its connection to Kafka (the envelope may still be ordered,
// as after any SERVICE_UNAVAILABLE), or after ProduceTimeout.
func (a *Ack) Wait(ctx context.Context) error {
	t := time.NewTimer(a.timeout)
	defer t.Stop()
	if _, err := a.ack.WaitOr(ctx, a.lost.Done(), t.C); err != nil {
		if errors.Is(err, kafka.ErrGaveUp) {
			err = fmt.Errorf("%w (%v)", errConnectionLost, a.c.Err())
		}
		return a.c.produceError(a.size, err)
	}
	return nil
}

var errConnectionLost = errors.New("the orderer lost its connection to Kafka while waiting for the acknowledgement; the envelope may or may not be ordered")

// lostCtx is the context that ends at the next loss of connection.
func (c *Chain) lostCtx() context.Context {
	c.lostMu.Lock()
	defer c.lostMu.Unlock()
	return c.lost
}

// setConnected records the connection state; losing it ends the waits of pending Broadcasts.
func (c *Chain) setConnected(on bool) {
	c.lostMu.Lock()
	defer c.lostMu.Unlock()
	was := c.connected.Swap(on)
	if was != on && c.o.Metrics != nil {
		c.o.Metrics.Connected(c.o.ChannelID, on)
	}
	switch {
	case was && !on:
		c.loseConn()
	case !was && on:
		if c.lost.Err() != nil {
			c.lost, c.loseConn = context.WithCancel(context.Background())
		}
	}
}

func (c *Chain) enqueue(ctx context.Context, env *cb.Envelope, raw []byte, seq uint64, class ab.KafkaMessageRegular_Class) (*Ack, error) {
	if err := c.waitGate(ctx); err != nil {
		return nil, err
	}
	lost := c.lostCtx()
	if !c.connected.Load() {
		if err := c.Err(); err != nil {
			return nil, fmt.Errorf("%w: channel %s: backing Kafka cluster has not completed booting (or is unreachable); try again later: %v", msgprocessor.ErrUnavailable, c.o.ChannelID, err)
		}
		return nil, fmt.Errorf("%w: channel %s: backing Kafka cluster has not completed booting (or is unreachable); try again later", msgprocessor.ErrUnavailable, c.o.ChannelID)
	}
	payload := raw
	if payload == nil {
		var err error
		if payload, err = proto.Marshal(env); err != nil {
			return nil, fmt.Errorf("%w: envelope cannot be encoded: %v", msgprocessor.ErrBadRequest, err)
		}
	}
	qctx, cancel := context.WithTimeout(ctx, c.o.ProduceTimeout)
	defer cancel()
	ack, err := c.o.Producer.Enqueue(qctx, c.o.ChannelID, kafka.MarshalRegular(payload, seq, class, 0))
	if err != nil {
		return nil, c.produceError(len(payload), err)
	}
	return &Ack{c: c, ack: ack, size: len(payload), timeout: c.o.ProduceTimeout, lost: lost}, nil
}

func (c *Chain) produceError(size int, err error) error {
	if kafka.IsMessageTooLarge(err) {
		return fmt.Errorf("%w: channel %s: envelope of %d bytes is larger than Kafka accepts (the brokers' message.max.bytes, or the topic's max.message.bytes): %v", msgprocessor.ErrBadRequest, c.o.ChannelID, size, err)
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
	short := c.o.Retry.ShortInterval
	if short <= 0 {
		short = 5 * time.Second
	}
	for {
		err := c.session(ctx)
		c.setConnected(false)
		if ctx.Err() != nil {
			return
		}
		if kafka.IsRetriesExhausted(err) {
			// Fabric panics here. kord keeps serving the ledger and says, on /healthz and in
			// the log, that this channel stopped trying; a restart tries again.
			err = fmt.Errorf("channel %s: halted, Kafka retries exhausted; restart the orderer once Kafka is reachable: %w", c.o.ChannelID, err)
			c.lastErr.Store(&err)
			c.log.Error("chain halted: Kafka retries exhausted", "err", err)
			return
		}
		c.lastErr.Store(&err)
		pause := short
		if kafka.IsNonRetriable(err) && c.o.Retry.LongInterval > 0 {
			// Nothing changes without an operator (offsets gone, bad configuration): look
			// again now and then instead of hammering Kafka.
			pause = c.o.Retry.LongInterval
		}
		c.log.Error("chain session ended; retrying", "err", err, "retry_in", pause)
		select {
		case <-ctx.Done():
			return
		case <-time.After(pause):
		}
	}
}

// retry runs one session step on the Kafka.Retry schedule, logging every failed attempt and
// keeping the last one as the chain's reported error (/healthz) while it retries.
func (c *Chain) retry(ctx context.Context, step string, fn func(ctx context.Context) error) error {
	return kafka.RetryNotify(ctx, c.o.Retry, step, func(a kafka.Attempt) {
		err := fmt.Errorf("channel %s: %s: attempt %d failed, retrying every %s: %w", c.o.ChannelID, a.Step, a.Number, a.Next, a.Err)
		c.lastErr.Store(&err)
		c.log.Warn("Kafka step failed; will retry", "step", a.Step, "attempt", a.Number, "elapsed", a.Elapsed.Round(time.Millisecond), "retry_in", a.Next, "err", a.Err)
	}, fn)
}

// topicErr explains a missing topic for a channel that has consumed from it before.
func (c *Chain) topicErr(err error, next int64) error {
	if kafka.IsUnknownTopic(err) && next >= 0 {
		return fmt.Errorf("channel %s: Kafka topic %q does not exist, but this orderer's ledger has consumed it up to offset %d (next offset %d); kord does not create it again (an empty topic would be a different log): restore the topic: %w",
			c.o.ChannelID, c.o.ChannelID, next-1, next, err)
	}
	return err
}

// stallTimeout is how long a chain waits, consuming nothing, for a CONNECT it posted after a
// consumer error to come back before it starts a new session (with a new consumer).
const stallTimeout = 10 * time.Second

// probeInterval is how often a chain whose consumer reported an error posts a CONNECT to
// find out whether Kafka works again.
func (c *Chain) probeInterval() time.Duration {
	d := c.o.Retry.ShortInterval
	if d <= 0 || d > time.Second {
		d = time.Second
	}
	return d
}

// session connects to Kafka and consumes until an error or ctx ends.
//
// Order: rebuild the machine from the ledger; make sure the topic exists (only for a channel
// that has never consumed it: a channel whose ledger holds Kafka offsets must find its topic,
// not get a new empty one); start consuming at the offset after the last one persisted (this
// checks that the offset still exists); post CONNECT. The chain reports itself connected, and
// takes Broadcast traffic, once it consumed its own CONNECT: the produce and consume paths
// both work and the ledger has caught up with everything written before.
func (c *Chain) session(ctx context.Context) error {
	topic := c.o.ChannelID
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
	start := m.StartOffset()
	fresh := start < 0
	if fresh {
		// A channel that has consumed nothing starts at offset 0 rather than at "oldest"
		// (Fabric's choice): if the topic's first records are gone, starting at the oldest
		// left would silently build a different chain than the other orderers'.
		start = 0
	}

	if c.o.EnsureTopic != nil && fresh {
		if err := c.retry(ctx, "create topic "+topic, func(ctx context.Context) error {
			return c.o.EnsureTopic(ctx, topic)
		}); err != nil {
			return err
		}
	}

	var part Partition
	if err := c.retry(ctx, "consume "+topic, func(ctx context.Context) error {
		p, err := c.o.Consume(ctx, topic, start)
		if err != nil {
			if kafka.IsOffsetOutOfRange(err) {
				return kafka.NonRetriable(fmt.Errorf("channel %s: the ledger resumes at offset %d: %w", c.o.ChannelID, start, err))
			}
			return c.topicErr(err, start)
		}
		part = p
		return nil
	}); err != nil {
		return err
	}
	defer part.Close()

	var connectAt int64
	if err := c.retry(ctx, "post CONNECT to "+topic, func(ctx context.Context) error {
		off, err := c.o.Producer.Produce(ctx, topic, kafka.MarshalConnect())
		connectAt = off
		return c.topicErr(err, start)
	}); err != nil {
		return err
	}
	c.log.Info("chain connected to Kafka", "start_offset", start, "height", m.Height(), "connect_offset", connectAt)

	// Posts the loop starts (time-to-cut, CONNECT probes) run aside, so that a Kafka that does
	// not answer never stalls consumption: their results come back on these channels. The
	// goroutines end with the session (sctx), which waits for them.
	sctx, scancel := context.WithCancel(ctx)
	var posts sync.WaitGroup
	defer func() {
		scancel()
		posts.Wait()
	}()
	type posted struct {
		offset int64
		err    error
	}
	post := func(value []byte, timeout time.Duration, done chan<- posted) {
		posts.Add(1)
		go func() {
			defer posts.Done()
			pctx, cancel := context.WithTimeout(sctx, timeout)
			defer cancel()
			off, err := c.o.Producer.Produce(pctx, topic, value)
			done <- posted{off, err} // buffered for the one post in flight
		}()
	}

	var fill fillClock
	var timer *time.Timer
	var timerC <-chan time.Time
	stopTimer := func() {
		if timer != nil {
			timer.Stop()
			timer, timerC = nil, nil
		}
	}
	defer stopTimer()
	ttcDone := make(chan posted, 1)
	var ttcBlock uint64
	ttcInFlight := false

	// After a consumer error the chain is disconnected until a CONNECT it posts comes back.
	var probe *time.Timer
	var probeC <-chan time.Time
	stopProbe := func() {
		if probe != nil {
			probe.Stop()
			probe, probeC = nil, nil
		}
	}
	defer stopProbe()
	probeDone := make(chan posted, 1)
	probeInFlight := false
	// A CONNECT that Kafka acknowledged but that does not come back, while nothing else is
	// consumed either, means the consumer is stuck (seen with sarama after a network
	// partition); a new session, with a new consumer, is then the way out.
	var stall *time.Timer
	var stallC <-chan time.Time
	stopStall := func() {
		if stall != nil {
			stall.Stop()
			stall, stallC = nil, nil
		}
	}
	defer stopStall()
	armProbe := func() {
		if probe == nil && !probeInFlight {
			probe = time.NewTimer(c.probeInterval())
			probeC = probe.C
		}
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err, ok := <-part.Errors():
			if !ok {
				return errors.New("partition consumer closed")
			}
			if kafka.IsOffsetOutOfRange(err) {
				return kafka.NonRetriable(fmt.Errorf("channel %s: %w", topic, err))
			}
			// sarama keeps retrying by itself; Broadcast is refused until a CONNECT posted
			// from now on is consumed.
			err = fmt.Errorf("channel %s: consuming from Kafka: %w", c.o.ChannelID, c.topicErr(err, m.StartOffset()))
			c.lastErr.Store(&err)
			if c.connected.Load() {
				c.setConnected(false)
				c.log.Warn("Kafka consumer error; refusing Broadcast until Kafka answers again", "err", err)
			}
			connectAt = -1
			armProbe()
		case <-probeC:
			probe, probeC = nil, nil
			if connectAt < 0 && !probeInFlight {
				probeInFlight = true
				post(kafka.MarshalConnect(), min(c.o.ProduceTimeout, 10*time.Second), probeDone)
			}
		case r := <-probeDone:
			probeInFlight = false
			if r.err == nil {
				connectAt = r.offset
				c.log.Info("posted CONNECT; waiting to consume it", "offset", r.offset)
				stopStall()
				stall = time.NewTimer(stallTimeout)
				stallC = stall.C
			} else {
				err := fmt.Errorf("channel %s: posting CONNECT: %w", c.o.ChannelID, c.topicErr(r.err, m.StartOffset()))
				c.lastErr.Store(&err)
				armProbe()
			}
		case <-stallC:
			stall, stallC = nil, nil
			if !c.connected.Load() && connectAt >= 0 {
				return fmt.Errorf("channel %s: the CONNECT posted at offset %d was not consumed within %s; restarting the Kafka session", c.o.ChannelID, connectAt, stallTimeout)
			}
		case rec, ok := <-part.Records():
			if !ok {
				return errors.New("partition consumer closed")
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
			if stall != nil && rec.Offset < connectAt {
				stall.Reset(stallTimeout) // catching up: the consumer works
			}
			if connectAt >= 0 && rec.Offset >= connectAt && !c.connected.Load() {
				c.lastErr.Store(nil)
				c.setConnected(true)
				stopProbe()
				stopStall()
				c.log.Info("chain consumed its CONNECT; taking Broadcast traffic", "offset", rec.Offset, "height", m.Height())
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
			if ttcInFlight {
				continue // the one in flight asks for the same cut
			}
			ttc := m.TimerFired()
			value, err := proto.Marshal(ttc)
			if err != nil {
				return err
			}
			ttcBlock = ttc.GetTimeToCut().GetBlockNumber()
			ttcInFlight = true
			post(value, c.o.ProduceTimeout, ttcDone)
		case r := <-ttcDone:
			ttcInFlight = false
			if r.err != nil {
				// Without the TIME_TO_CUT the pending batch would wait for the next message;
				// try again after another timeout instead.
				c.log.Warn("posting time-to-cut failed; will retry", "block", ttcBlock, "err", r.err)
				// Only while that block is still to be cut (a cut by size or count since
				// then stopped the timer and emptied the batch).
				if timer == nil && m.Height() == ttcBlock {
					timer = time.NewTimer(m.Config().BatchTimeout)
					timerC = timer.C
				}
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
