package loadgen

import (
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	cb "github.com/hyperledger/fabric-protos-go/common"
	ab "github.com/hyperledger/fabric-protos-go/orderer"
	"google.golang.org/grpc"

	"github.com/kordhq/kord/orderer/client"
)

// Config describes one run.
type Config struct {
	// Dial opens a connection to the orderer. It is called once per Broadcast stream and
	// once for the Deliver follower.
	Dial func(ctx context.Context) (*grpc.ClientConn, error)
	// Signer signs every envelope and the Deliver request.
	Signer client.Signer
	// Channel is the channel the envelopes are sent to and delivered from.
	Channel string
	// TLSCertHash, with mutual TLS, is the SHA-256 of the client certificate, bound into the
	// Deliver request as an orderer requiring client certificates wants it.
	TLSCertHash []byte

	// Streams is the number of Broadcast streams (default 1).
	Streams int
	// Count bounds the number of envelopes sent; 0 means no bound (Duration must be set).
	Count uint64
	// Duration bounds the sending time; 0 means no bound (Count must be set).
	Duration time.Duration
	// Size is the number of random payload data bytes of each envelope.
	Size int
	// Rate is the offered load in envelopes per second over all streams; 0 sends as fast as
	// the streams go.
	Rate float64
	// SignOnTheFly builds and signs each envelope when it is sent instead of before the
	// clock starts. Without it, Count envelopes are prepared (or Rate·Duration when Count is
	// 0 and Rate is set).
	SignOnTheFly bool
	// Deliver follows the chain and matches delivered envelopes; without it only
	// acknowledgements are measured.
	Deliver bool
	// MaxInFlight bounds the unanswered envelopes of one stream (default 1000).
	MaxInFlight int
	// DrainTimeout is how long the end of a run waits for a block while acknowledged
	// envelopes are missing (default 10s).
	DrainTimeout time.Duration

	// Progress, if set, is called every ProgressInterval (default 250ms) from a goroutine of
	// its own, and once more at the end.
	Progress         func(Progress)
	ProgressInterval time.Duration
	// OnAck and OnDelivered, if set, see every response (with the envelope's transaction ID)
	// and the transaction ID of every envelope of every followed block. They are called from
	// several goroutines and must be quick.
	OnAck       func(txID string, status cb.Status)
	OnDelivered func(txID string, block uint64)
}

// Progress is a snapshot of a run for a progress display.
type Progress struct {
	Phase     string        // "preparing", "sending", "draining" or "done"
	Prepared  uint64        // envelopes prepared so far (preparing)
	Total     uint64        // envelopes to send, 0 when bounded by duration only
	Duration  time.Duration // the sending bound, 0 when bounded by count only
	Elapsed   time.Duration // since the clock started
	Sent      uint64
	Acked     uint64
	Refused   uint64
	Delivered uint64
}

// Report is the outcome of a run. Durations are in seconds, latencies in milliseconds.
type Report struct {
	// Orderer is for the caller to fill in (Run does not know the address).
	Orderer      string  `json:"orderer,omitempty"`
	Channel      string  `json:"channel"`
	Streams      int     `json:"streams"`
	Size         int     `json:"size"`
	Rate         float64 `json:"rate,omitempty"`
	SignOnTheFly bool    `json:"sign_on_the_fly"`

	Sent         uint64            `json:"sent"`
	Acknowledged uint64            `json:"acknowledged"`
	Refused      map[string]uint64 `json:"refused"`
	// Unanswered were sent on a stream that broke before their response.
	Unanswered uint64 `json:"unanswered"`
	Delivered  uint64 `json:"delivered"`
	// Undelivered is acknowledged minus delivered (0 without the follower).
	Undelivered uint64 `json:"undelivered"`
	// Foreign envelopes were in followed blocks without having been sent by this run (or
	// were delivered a second time).
	Foreign uint64 `json:"foreign"`

	// Elapsed runs from the start of the clock to the last acknowledgement or delivery.
	Elapsed     float64 `json:"elapsed_s"`
	SendElapsed float64 `json:"send_elapsed_s"`
	// SentRate is sent over SendElapsed: with Rate, below Rate when the orderer did not keep
	// up (MaxInFlight unanswered envelopes on every stream hold the senders back).
	SentRate         float64 `json:"sent_per_s"`
	AcknowledgedRate float64 `json:"acknowledged_per_s"`
	DeliveredRate    float64 `json:"delivered_per_s"`
	// Latency is send→delivery, AckLatency send→acknowledgement.
	Latency    Percentiles `json:"latency_ms"`
	AckLatency Percentiles `json:"ack_latency_ms"`
	// CutLatency is, per block, from the send of the block's last-sent envelope of this run
	// to the block's delivery: send→delivery without the wait for the block to fill, which
	// with a full block is at least MaxMessageCount/rate for its first envelope whatever the
	// orderer does.
	CutLatency Percentiles `json:"cut_latency_ms"`
	// ClientCPU is the CPU time (user and system) this process spent from the start of the
	// clock to the end of the run: the client's share of a machine it shares.
	ClientCPU float64 `json:"client_cpu_s"`

	// Blocks carried at least one envelope of this run; EnvelopesPerBlock is their mean
	// number of envelopes.
	Blocks            uint64  `json:"blocks"`
	EnvelopesPerBlock float64 `json:"envelopes_per_block"`

	Errors []string `json:"errors,omitempty"`
}

// Percentiles of a latency distribution, in milliseconds.
type Percentiles struct {
	P50  float64 `json:"p50"`
	P95  float64 `json:"p95"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

func percentiles(h *Histogram) Percentiles {
	ms := func(d time.Duration) float64 { return math.Round(float64(d)/float64(time.Microsecond)) / 1000 }
	return Percentiles{P50: ms(h.Quantile(0.50)), P95: ms(h.Quantile(0.95)), P99: ms(h.Quantile(0.99)), Max: ms(h.Max()), Mean: ms(h.Mean())}
}

func (c *Config) check() error {
	switch {
	case c.Dial == nil:
		return errors.New("loadgen: no Dial function")
	case c.Signer == nil:
		return errors.New("loadgen: no signer")
	case c.Channel == "":
		return errors.New("loadgen: no channel")
	case c.Count == 0 && c.Duration <= 0:
		return errors.New("loadgen: a count or a duration is needed")
	case c.Size < 0:
		return errors.New("loadgen: negative size")
	case c.Rate < 0:
		return errors.New("loadgen: negative rate")
	case !c.SignOnTheFly && c.Count == 0 && c.Rate == 0:
		return errors.New("loadgen: prepared envelopes need a count (or a rate and a duration); sign on the fly for a run bounded by duration alone")
	}
	return nil
}

// toPrepare is the number of envelopes built before the clock starts.
func (c *Config) toPrepare() uint64 {
	if c.SignOnTheFly {
		return 0
	}
	if c.Count > 0 {
		return c.Count
	}
	return uint64(math.Ceil(c.Rate * c.Duration.Seconds()))
}

// prepared is an envelope ready to send.
type prepared struct {
	env  *cb.Envelope
	txID string
}

// builder makes envelopes; one per goroutine.
type builder struct {
	cfg *Config
	rng *rand.ChaCha8
}

func newBuilder(cfg *Config) *builder {
	var seed [32]byte
	_, _ = crand.Read(seed[:])
	return &builder{cfg: cfg, rng: rand.NewChaCha8(seed)}
}

func (b *builder) build() (prepared, error) {
	data := make([]byte, b.cfg.Size)
	_, _ = b.rng.Read(data)
	env, err := client.Envelope(b.cfg.Signer, cb.HeaderType_ENDORSER_TRANSACTION, b.cfg.Channel, data)
	if err != nil {
		return prepared{}, fmt.Errorf("building an envelope: %w", err)
	}
	id, err := client.TxID(env)
	if err != nil {
		return prepared{}, err
	}
	return prepared{env: env, txID: id}, nil
}

// pending maps the transaction IDs of envelopes on their way to their send time (offset
// from the start of the clock). Sharded: every stream writes, the follower and the
// receivers delete.
type pending struct {
	shards [64]struct {
		sync.Mutex
		m map[string]time.Duration
	}
}

func newPending() *pending {
	p := &pending{}
	for i := range p.shards {
		p.shards[i].m = map[string]time.Duration{}
	}
	return p
}

func (p *pending) shard(id string) int {
	var h uint32 = 2166136261
	for i := 0; i < len(id) && i < 8; i++ {
		h = (h ^ uint32(id[i])) * 16777619
	}
	return int(h % uint32(len(p.shards)))
}

func (p *pending) put(id string, at time.Duration) {
	s := &p.shards[p.shard(id)]
	s.Lock()
	s.m[id] = at
	s.Unlock()
}

func (p *pending) take(id string) (time.Duration, bool) {
	s := &p.shards[p.shard(id)]
	s.Lock()
	at, ok := s.m[id]
	if ok {
		delete(s.m, id)
	}
	s.Unlock()
	return at, ok
}

// run is the state of one Run.
type run struct {
	cfg     *Config
	start   time.Time
	envs    []prepared
	next    atomic.Uint64
	pending *pending

	sent, acked, refused, delivered, unanswered atomic.Uint64
	lastAck, lastDelivery                       atomic.Int64 // ns since start

	mu         sync.Mutex
	errs       []string
	refusedBy  map[string]uint64
	ackHist    Histogram
	deliveryMu sync.Mutex // guards the follower's results below
	latHist    Histogram
	cutHist    Histogram
	blocks     uint64
	blockEnvs  uint64
	foreign    uint64
}

func (r *run) fail(format string, args ...any) {
	r.mu.Lock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
	r.mu.Unlock()
}

func (r *run) since() time.Duration { return time.Since(r.start) }

// Run performs one run. It returns an error when the run could not start (bad
// configuration, no connection, the channel cannot be followed); failures during the run
// (a broken stream) are listed in Report.Errors. Cancelling ctx ends the run early with a
// report of what happened so far.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if cfg.Streams <= 0 {
		cfg.Streams = 1
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = 1000
	}
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = 10 * time.Second
	}
	if cfg.ProgressInterval <= 0 {
		cfg.ProgressInterval = 250 * time.Millisecond
	}
	r := &run{cfg: &cfg, pending: newPending(), refusedBy: map[string]uint64{}}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()

	phase := atomic.Value{}
	phase.Store("preparing")
	var prepCount atomic.Uint64
	stopProgress := r.progress(runCtx, &phase, &prepCount)
	defer stopProgress()

	if err := r.prepare(runCtx, &prepCount); err != nil {
		return nil, err
	}

	// The follower and the streams are connected before the clock starts.
	var follower *follower
	if cfg.Deliver {
		f, err := r.follow(runCtx)
		if err != nil {
			return nil, err
		}
		follower = f
		defer follower.stop()
	}
	streams := make([]ab.AtomicBroadcast_BroadcastClient, cfg.Streams)
	for i := range streams {
		conn, err := cfg.Dial(runCtx)
		if err != nil {
			return nil, err
		}
		defer conn.Close()
		if streams[i], err = ab.NewAtomicBroadcastClient(conn).Broadcast(runCtx); err != nil {
			return nil, fmt.Errorf("opening Broadcast stream %d: %w", i, err)
		}
	}

	r.start = time.Now()
	cpu0 := processCPU()
	if follower != nil {
		follower.startClock()
	}
	phase.Store("sending")
	sendCtx, sendCancel := runCtx, context.CancelFunc(func() {})
	if cfg.Duration > 0 {
		sendCtx, sendCancel = context.WithDeadline(runCtx, r.start.Add(cfg.Duration))
	}
	defer sendCancel()
	p := newPacer(r.start, cfg.Rate)
	var wg sync.WaitGroup
	for i, s := range streams {
		inflight := make(chan inflightEnv, cfg.MaxInFlight)
		wg.Add(2)
		go func() { defer wg.Done(); r.send(sendCtx, i, s, p, inflight) }()
		go func() { defer wg.Done(); r.receive(i, s, inflight) }()
	}
	wg.Wait()
	sendElapsed := r.since()
	sendCancel()

	if follower != nil {
		phase.Store("draining")
		r.drain(ctx)
		follower.stop()
	}
	phase.Store("done")
	stopProgress()
	rep := r.report(sendElapsed)
	rep.ClientCPU = math.Round((processCPU()-cpu0).Seconds()*100) / 100
	return rep, nil
}

// progress calls cfg.Progress until the returned function is called (which makes a last
// call).
func (r *run) progress(ctx context.Context, phase *atomic.Value, prep *atomic.Uint64) func() {
	if r.cfg.Progress == nil {
		return func() {}
	}
	snap := func() Progress {
		p := Progress{
			Phase: phase.Load().(string), Prepared: prep.Load(), Total: r.cfg.Count, Duration: r.cfg.Duration,
			Sent: r.sent.Load(), Acked: r.acked.Load(), Refused: r.refused.Load(), Delivered: r.delivered.Load(),
		}
		if p.Phase != "preparing" {
			p.Elapsed = r.since()
		}
		if p.Total == 0 && p.Phase == "preparing" {
			p.Total = r.cfg.toPrepare()
		}
		return p
	}
	done := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		t := time.NewTicker(r.cfg.ProgressInterval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				r.cfg.Progress(snap())
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(done)
			<-exited
			r.cfg.Progress(snap())
		})
	}
}

// prepare builds and signs the envelopes on every core.
func (r *run) prepare(ctx context.Context, count *atomic.Uint64) error {
	n := r.cfg.toPrepare()
	if n == 0 {
		return nil
	}
	r.envs = make([]prepared, n)
	var next atomic.Uint64
	workers := runtime.GOMAXPROCS(0)
	errc := make(chan error, workers)
	for range workers {
		go func() {
			b := newBuilder(r.cfg)
			for {
				i := next.Add(1) - 1
				if i >= n || ctx.Err() != nil {
					errc <- ctx.Err()
					return
				}
				e, err := b.build()
				if err != nil {
					errc <- err
					return
				}
				r.envs[i] = e
				count.Add(1)
			}
		}()
	}
	var first error
	for range workers {
		if err := <-errc; err != nil && first == nil {
			first = err
		}
	}
	return first
}

type inflightEnv struct {
	txID string
	at   time.Duration
}

// send is the sending half of stream i.
func (r *run) send(ctx context.Context, i int, s ab.AtomicBroadcast_BroadcastClient, p pacer, inflight chan<- inflightEnv) {
	defer close(inflight)
	defer func() { _ = s.CloseSend() }()
	var b *builder
	if r.cfg.SignOnTheFly {
		b = newBuilder(r.cfg)
	}
	for {
		k := r.next.Add(1) - 1
		if r.cfg.Count > 0 && k >= r.cfg.Count {
			return
		}
		if !p.wait(ctx, k) {
			return
		}
		var e prepared
		if b != nil {
			var err error
			if e, err = b.build(); err != nil {
				r.fail("stream %d: %v", i, err)
				return
			}
		} else {
			if k >= uint64(len(r.envs)) {
				return // the prepared envelopes (Rate·Duration) ran out
			}
			e = r.envs[k]
			r.envs[k] = prepared{} // sent envelopes are not kept
		}
		at := r.since()
		if r.cfg.Deliver {
			r.pending.put(e.txID, at)
		}
		inflight <- inflightEnv{txID: e.txID, at: at}
		if err := s.Send(e.env); err != nil {
			// The receiving half learns of it from Recv.
			r.fail("stream %d: send: %v", i, err)
			return
		}
		r.sent.Add(1)
	}
}

// receive is the receiving half of stream i: responses come in the order of the envelopes.
func (r *run) receive(i int, s ab.AtomicBroadcast_BroadcastClient, inflight <-chan inflightEnv) {
	var h Histogram
	refused := map[string]uint64{}
	defer func() {
		r.mu.Lock()
		r.ackHist.Merge(&h)
		for k, v := range refused {
			r.refusedBy[k] += v
		}
		r.mu.Unlock()
	}()
	for e := range inflight {
		resp, err := s.Recv()
		if err != nil {
			r.fail("stream %d: receive: %v", i, err)
			r.abandon(e)
			for e := range inflight {
				r.abandon(e)
			}
			return
		}
		now := r.since()
		h.Record(now - e.at)
		if resp.Status == cb.Status_SUCCESS {
			r.acked.Add(1)
			storeMax(&r.lastAck, int64(now))
		} else {
			r.refused.Add(1)
			refused[resp.Status.String()]++
			if r.cfg.Deliver {
				r.pending.take(e.txID)
			}
		}
		if r.cfg.OnAck != nil {
			r.cfg.OnAck(e.txID, resp.Status)
		}
	}
}

// abandon counts an envelope whose response will not come.
func (r *run) abandon(e inflightEnv) {
	r.unanswered.Add(1)
	if r.cfg.Deliver {
		r.pending.take(e.txID)
	}
}

func storeMax(a *atomic.Int64, v int64) {
	for {
		old := a.Load()
		if v <= old || a.CompareAndSwap(old, v) {
			return
		}
	}
}

// drain waits until every acknowledged envelope has been delivered, or no delivery has come
// for DrainTimeout.
func (r *run) drain(ctx context.Context) {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	last, lastAt := r.delivered.Load(), time.Now()
	for {
		d := r.delivered.Load()
		if d >= r.acked.Load() || ctx.Err() != nil {
			return
		}
		if d != last {
			last, lastAt = d, time.Now()
		} else if time.Since(lastAt) > r.cfg.DrainTimeout {
			r.fail("%d acknowledged envelopes not delivered after waiting %v for a block", r.acked.Load()-d, r.cfg.DrainTimeout)
			return
		}
		select {
		case <-ctx.Done():
		case <-t.C:
		}
	}
}

func (r *run) report(sendElapsed time.Duration) *Report {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.deliveryMu.Lock()
	defer r.deliveryMu.Unlock()
	secs := func(ns int64) float64 { return math.Round(float64(ns)/1e6) / 1e3 }
	rate := func(n uint64, ns int64) float64 {
		if ns <= 0 {
			return 0
		}
		return math.Round(float64(n)/(float64(ns)/1e9)*10) / 10
	}
	rep := &Report{
		Channel: r.cfg.Channel, Streams: r.cfg.Streams, Size: r.cfg.Size, Rate: r.cfg.Rate, SignOnTheFly: r.cfg.SignOnTheFly,
		Sent: r.sent.Load(), Acknowledged: r.acked.Load(), Refused: r.refusedBy, Unanswered: r.unanswered.Load(),
		Delivered: r.delivered.Load(), Foreign: r.foreign,
		SendElapsed: secs(int64(sendElapsed)),
		Latency:     percentiles(&r.latHist), AckLatency: percentiles(&r.ackHist), CutLatency: percentiles(&r.cutHist),
		Blocks: r.blocks, Errors: r.errs,
	}
	if rep.Delivered < rep.Acknowledged && r.cfg.Deliver {
		rep.Undelivered = rep.Acknowledged - rep.Delivered
	}
	lastAck, lastDel := r.lastAck.Load(), r.lastDelivery.Load()
	rep.Elapsed = secs(max(lastAck, lastDel, int64(sendElapsed)))
	rep.SentRate = rate(rep.Sent, int64(sendElapsed))
	rep.AcknowledgedRate = rate(rep.Acknowledged, lastAck)
	rep.DeliveredRate = rate(rep.Delivered, lastDel)
	if r.blocks > 0 {
		rep.EnvelopesPerBlock = math.Round(float64(r.blockEnvs)/float64(r.blocks)*10) / 10
	}
	return rep
}

// follower is the Deliver stream following the chain.
type follower struct {
	cancel    context.CancelFunc
	done      chan struct{}
	clock     chan struct{} // closed when the clock has started
	clockOnce sync.Once
	stopOnce  sync.Once
}

// follow opens the Deliver stream at the newest block and waits for that block.
func (r *run) follow(ctx context.Context) (*follower, error) {
	conn, err := r.cfg.Dial(ctx)
	if err != nil {
		return nil, err
	}
	req, err := client.BoundSeekEnvelope(r.cfg.Signer, r.cfg.Channel, client.Newest(), client.Specified(client.MaxBlock), ab.SeekInfo_BLOCK_UNTIL_READY, r.cfg.TLSCertHash)
	if err != nil {
		conn.Close()
		return nil, err
	}
	fctx, cancel := context.WithCancel(ctx)
	f := &follower{cancel: cancel, done: make(chan struct{}), clock: make(chan struct{})}
	ready := make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		defer close(f.done)
		defer conn.Close()
		first := true
		status, err := client.Deliver(fctx, conn, req, func(b *cb.Block) error {
			if first {
				// The newest block at the time of the request: nothing of this run.
				first = false
				close(ready)
				select {
				case <-f.clock:
					return nil
				case <-fctx.Done():
					return fctx.Err()
				}
			}
			r.onBlock(b)
			return nil
		})
		if fctx.Err() != nil {
			return
		}
		if err == nil {
			err = fmt.Errorf("status %s", status)
		}
		select {
		case <-ready:
			r.fail("deliver: %v", err)
		default:
			errc <- err
		}
	}()
	select {
	case <-ready:
		return f, nil
	case err := <-errc:
		cancel()
		<-f.done
		return nil, fmt.Errorf("following channel %s: %w", r.cfg.Channel, err)
	case <-ctx.Done():
		cancel()
		<-f.done
		return nil, ctx.Err()
	}
}

func (f *follower) startClock() { f.clockOnce.Do(func() { close(f.clock) }) }

// stop ends the stream; it may be called more than once.
func (f *follower) stop() {
	f.stopOnce.Do(func() {
		f.cancel()
		<-f.done
	})
}

// onBlock matches the envelopes of a block.
func (r *run) onBlock(b *cb.Block) {
	now := r.since()
	num := b.GetHeader().GetNumber()
	r.deliveryMu.Lock()
	defer r.deliveryMu.Unlock()
	var mine uint64
	var lastSent time.Duration
	for _, raw := range b.GetData().GetData() {
		id, ok := envelopeTxID(raw)
		if !ok {
			r.foreign++
			continue
		}
		if r.cfg.OnDelivered != nil {
			r.cfg.OnDelivered(id, num)
		}
		at, ok := r.pending.take(id)
		if !ok {
			r.foreign++
			continue
		}
		mine++
		r.latHist.Record(now - at)
		lastSent = max(lastSent, at)
	}
	if mine > 0 {
		r.cutHist.Record(now - lastSent)
		r.blocks++
		r.blockEnvs += uint64(len(b.GetData().GetData()))
		r.delivered.Add(mine)
		storeMax(&r.lastDelivery, int64(now))
	}
}
