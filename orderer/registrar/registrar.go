// Package registrar owns the set of channels an orderer serves: the system channel it was
// bootstrapped with, every channel found in its ledger on restart, and the channels created
// through the system channel while it runs. Each channel is a ledger store plus a Kafka chain;
// the registrar is what Broadcast and Deliver look channels up in.
package registrar

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	cb "github.com/hyperledger/fabric-protos-go/common"
	ab "github.com/hyperledger/fabric-protos-go/orderer"

	"github.com/kordhq/kord/kafka"
	"github.com/kordhq/kord/ledger"
	"github.com/kordhq/kord/orderer/blocks"
	"github.com/kordhq/kord/orderer/broadcast"
	"github.com/kordhq/kord/orderer/chain"
	"github.com/kordhq/kord/orderer/channelconfig"
	"github.com/kordhq/kord/orderer/configtx"
	"github.com/kordhq/kord/orderer/deliver"
	"github.com/kordhq/kord/orderer/msgprocessor"
	"github.com/kordhq/kord/orderer/policy"
)

// Signer is the orderer's identity: it signs blocks and the envelopes it creates.
type Signer interface {
	blocks.Signer
	Serialize() []byte
}

// Kafka is the Kafka plumbing shared by every chain of the process.
type Kafka struct {
	Producer    chain.Producer
	Consume     func(ctx context.Context, topic string, offset int64) (chain.Partition, error)
	EnsureTopic func(ctx context.Context, topic string) error
	Retry       kafka.RetryPolicy
}

// Options configure a registrar.
type Options struct {
	Ledger   *ledger.Provider
	Signer   Signer
	Verifier msgprocessor.Verifier
	// NoExpirationChecks is General.Authentication.NoExpirationChecks.
	NoExpirationChecks bool
	Log                *slog.Logger
	// OnBlocks and OnEvent are passed to every chain (metrics).
	OnBlocks func(channel string, written []*cb.Block, last *ab.KafkaMetadata)
	OnEvent  func(channel string, ev chain.Event)
	// ChainMetrics is passed to every chain.
	ChainMetrics chain.Metrics
}

// Registrar holds the channels.
type Registrar struct {
	o         Options
	log       *slog.Logger
	proc      *msgprocessor.Processor
	systemID  string
	kafka     *Kafka
	mu        sync.RWMutex
	channels  map[string]*channel
	startedCh chan struct{} // closed once Start has started every chain
}

type channel struct {
	id    string
	store *ledger.Store
	chain *chain.Chain
	reg   *Registrar
}

// Open loads every channel in the ledger. If the ledger holds no channel, genesis (the
// system channel's genesis block) is written first; it may be nil when the ledger is known
// not to be empty.
func Open(o Options, genesis *cb.Block) (*Registrar, error) {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	r := &Registrar{o: o, log: o.Log, proc: &msgprocessor.Processor{Verifier: o.Verifier, Signer: o.Signer, NoExpirationChecks: o.NoExpirationChecks}, channels: map[string]*channel{}, startedCh: make(chan struct{})}
	ids, err := o.Ledger.Channels()
	if err != nil {
		return nil, fmt.Errorf("registrar: listing channels: %w", err)
	}
	if len(ids) == 0 {
		if genesis == nil {
			return nil, errors.New("registrar: the ledger holds no channel and no genesis block was given (General.BootstrapMethod none needs an existing ledger)")
		}
		v, err := channelconfig.FromBlock(genesis)
		if err != nil {
			return nil, fmt.Errorf("registrar: genesis block: %w", err)
		}
		if err := v.RequireKafka(); err != nil {
			return nil, fmt.Errorf("registrar: genesis block: %w", err)
		}
		if !v.System {
			return nil, fmt.Errorf("registrar: genesis block of channel %q is not a system channel (its config has no Consortiums group)", v.ChannelID)
		}
		s, err := o.Ledger.Open(v.ChannelID)
		if err != nil {
			return nil, err
		}
		if err := s.Append(genesis); err != nil {
			return nil, fmt.Errorf("registrar: writing genesis block of %s: %w", v.ChannelID, err)
		}
		ids = []string{v.ChannelID}
		r.log.Info("bootstrapped system channel from genesis block", "channel", v.ChannelID)
	}
	for _, id := range ids {
		s, err := o.Ledger.Open(id)
		if err != nil {
			return nil, fmt.Errorf("registrar: %w", err)
		}
		ch := &channel{id: id, store: s, reg: r}
		r.channels[id] = ch
		cfg, err := ch.config()
		if err != nil {
			return nil, fmt.Errorf("registrar: %w", err)
		}
		if err := cfg.RequireKafka(); err != nil {
			return nil, fmt.Errorf("registrar: %w", err)
		}
		if cfg.System {
			if r.systemID != "" {
				return nil, fmt.Errorf("registrar: two system channels in the ledger: %s and %s", r.systemID, id)
			}
			r.systemID = id
		}
	}
	if r.systemID == "" {
		return nil, errors.New("registrar: the ledger holds no system channel")
	}
	return r, nil
}

// config reads a channel's current config from its ledger.
func (ch *channel) config() (*channelconfig.Values, error) {
	st, err := chain.LoadState(ch.id, ch.store)
	if err != nil {
		return nil, err
	}
	return st.Config, nil
}

// SystemChannelID names the system channel.
func (r *Registrar) SystemChannelID() string { return r.systemID }

// SystemConfig is the system channel's config as stored (before any chain runs).
func (r *Registrar) SystemConfig() (*channelconfig.Values, error) {
	r.mu.RLock()
	ch := r.channels[r.systemID]
	r.mu.RUnlock()
	if ch.chain != nil {
		return ch.chain.Config(), nil
	}
	return ch.config()
}

// Start starts a chain for every channel.
func (r *Registrar) Start(k *Kafka) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.kafka = k
	for _, ch := range r.channels {
		if err := r.startChain(ch); err != nil {
			return err
		}
	}
	close(r.startedCh)
	return nil
}

func (r *Registrar) startChain(ch *channel) error {
	c, err := chain.New(chain.Options{
		ChannelID:    ch.id,
		Store:        ch.store,
		Producer:     r.kafka.Producer,
		Consume:      r.kafka.Consume,
		EnsureTopic:  r.kafka.EnsureTopic,
		Signer:       r.o.Signer,
		Revalidator:  revalidator{r.proc},
		Retry:        r.kafka.Retry,
		OnNewChannel: r.createChannel,
		OnBlocks: func(b []*cb.Block, km *ab.KafkaMetadata) {
			if r.o.OnBlocks != nil {
				r.o.OnBlocks(ch.id, b, km)
			}
		},
		OnEvent: func(ev chain.Event) {
			if r.o.OnEvent != nil {
				r.o.OnEvent(ch.id, ev)
			}
		},
		Metrics: r.o.ChainMetrics,
		Log:     r.log,
	})
	if err != nil {
		return fmt.Errorf("registrar: %w", err)
	}
	ch.chain = c
	c.Start()
	return nil
}

// Stop stops every chain.
func (r *Registrar) Stop() {
	r.mu.RLock()
	chains := make([]*chain.Chain, 0, len(r.channels))
	for _, ch := range r.channels {
		if ch.chain != nil {
			chains = append(chains, ch.chain)
		}
	}
	r.mu.RUnlock()
	var wg sync.WaitGroup
	for _, c := range chains {
		wg.Add(1)
		go func() { defer wg.Done(); c.Stop() }()
	}
	wg.Wait()
}

// createChannel is called by the system chain for every ORDERER_TRANSACTION it commits.
func (r *Registrar) createChannel(_ context.Context, nc *chain.NewChannel) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.channels[nc.ChannelID]; ok {
		return nil // replayed after a restart: the channel was created before the crash
	}
	if err := nc.Config.RequireKafka(); err != nil {
		return err
	}
	s, err := r.o.Ledger.Open(nc.ChannelID)
	if err != nil {
		return err
	}
	if s.Height() == 0 {
		if err := s.Append(nc.Genesis); err != nil {
			return err
		}
	}
	ch := &channel{id: nc.ChannelID, store: s, reg: r}
	r.channels[nc.ChannelID] = ch
	r.log.Info("channel created", "channel", nc.ChannelID)
	select {
	case <-r.startedCh:
		return r.startChain(ch)
	default:
	}
	return nil
}

// Status is one channel's state, for health checks.
type Status struct {
	ChannelID string
	Height    uint64
	Connected bool
	Err       error
}

// Statuses reports every channel, sorted by ID.
func (r *Registrar) Statuses() []Status {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]Status, 0, len(r.channels))
	for _, ch := range r.channels {
		st := Status{ChannelID: ch.id, Height: ch.store.Height()}
		if ch.chain != nil {
			st.Connected, st.Err = ch.chain.Connected(), ch.chain.Err()
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ChannelID < out[j].ChannelID })
	return out
}

func (r *Registrar) lookup(id string) (*channel, error) {
	r.mu.RLock()
	ch, ok := r.channels[id]
	r.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("%w: channel %q does not exist on this orderer", msgprocessor.ErrChannelNotFound, id)
	}
	return ch, nil
}

// BroadcastChannel implements broadcast.Registrar. Normal messages go to their channel; a
// CONFIG_UPDATE goes to its channel's config path if the channel exists, else to the system
// channel, which creates channels.
func (r *Registrar) BroadcastChannel(p *msgprocessor.Parsed) (broadcast.Channel, error) {
	id := p.ChannelHeader.ChannelId
	switch p.Class {
	case msgprocessor.ConfigMsg:
		return nil, fmt.Errorf("%w: channel %q: %s messages are produced by orderers, not clients", msgprocessor.ErrBadRequest, id, cb.HeaderType(p.ChannelHeader.Type))
	case msgprocessor.ConfigUpdateMsg:
		if ch, err := r.lookup(id); err == nil {
			if err := ch.started(); err != nil {
				return nil, err
			}
			return configUpdates{ch}, nil
		}
		if err := configtx.ValidateChannelID(id); err != nil {
			return nil, fmt.Errorf("%w: channel creation: %v", msgprocessor.ErrBadRequest, err)
		}
		sys, err := r.lookup(r.systemID)
		if err != nil {
			return nil, err
		}
		if err := sys.started(); err != nil {
			return nil, err
		}
		return channelCreations{sys}, nil
	}
	ch, err := r.lookup(id)
	if err != nil {
		return nil, err
	}
	if err := ch.started(); err != nil {
		return nil, err
	}
	return ch, nil
}

func (ch *channel) started() error {
	ch.reg.mu.RLock()
	defer ch.reg.mu.RUnlock()
	if ch.chain == nil {
		return fmt.Errorf("%w: channel %q is not started yet", msgprocessor.ErrUnavailable, ch.id)
	}
	return nil
}

// Validate implements broadcast.Channel for normal messages.
func (ch *channel) Validate(env *cb.Envelope, p *msgprocessor.Parsed) (*cb.Envelope, uint64, error) {
	cfg := ch.chain.Config()
	if err := ch.reg.proc.Check(cfg, env, p); err != nil {
		return nil, 0, fmt.Errorf("channel %s: %w", ch.id, err)
	}
	return env, cfg.Sequence, nil
}

// Enqueue implements broadcast.Channel.
func (ch *channel) Enqueue(ctx context.Context, env *cb.Envelope, raw []byte, seq uint64) (broadcast.Ack, error) {
	return ch.chain.Enqueue(ctx, env, raw, seq)
}

// configUpdates is the broadcast ingress of config updates to an existing channel.
type configUpdates struct{ ch *channel }

func (c configUpdates) Validate(env *cb.Envelope, _ *msgprocessor.Parsed) (*cb.Envelope, uint64, error) {
	cfg := c.ch.chain.Config()
	out, err := c.ch.reg.proc.ProcessConfigUpdate(cfg, env)
	if err != nil {
		return nil, 0, err
	}
	return out, cfg.Sequence, nil
}

func (c configUpdates) Enqueue(ctx context.Context, env *cb.Envelope, _ []byte, seq uint64) (broadcast.Ack, error) {
	return c.ch.chain.EnqueueConfig(ctx, env, seq)
}

// channelCreations is the broadcast ingress of channel-creation requests: the system channel.
type channelCreations struct{ sys *channel }

func (c channelCreations) Validate(env *cb.Envelope, p *msgprocessor.Parsed) (*cb.Envelope, uint64, error) {
	cfg := c.sys.chain.Config()
	r := c.sys.reg
	r.mu.RLock()
	n := len(r.channels)
	r.mu.RUnlock()
	out, err := r.proc.ProcessChannelCreation(cfg, env, n)
	if err != nil {
		return nil, 0, err
	}
	return out, cfg.Sequence, nil
}

func (c channelCreations) Enqueue(ctx context.Context, env *cb.Envelope, _ []byte, seq uint64) (broadcast.Ack, error) {
	return c.sys.chain.EnqueueConfig(ctx, env, seq)
}

// DeliverChannel implements deliver.Registrar.
func (r *Registrar) DeliverChannel(id string) (deliver.Chain, error) {
	ch, err := r.lookup(id)
	if err != nil {
		return nil, err
	}
	return ch.store, nil
}

// Authorize implements deliver.Registrar: the request's signer must satisfy the channel's
// /Channel/Readers policy, re-checked whenever the channel's config changes, and its
// certificate must not have expired.
func (r *Registrar) Authorize(env *cb.Envelope, p *msgprocessor.Parsed) (deliver.Access, error) {
	ch, err := r.lookup(p.ChannelHeader.ChannelId)
	if err != nil {
		return nil, err
	}
	if len(p.Creator) == 0 {
		return nil, fmt.Errorf("%w: request has no creator", msgprocessor.ErrPermissionDenied)
	}
	a := &readAccess{ch: ch, sd: []*policy.SignedData{{Data: env.Payload, Identity: p.Creator, Signature: env.Signature}}}
	if !r.o.NoExpirationChecks {
		a.expires = msgprocessor.ExpiresAt(p.Creator)
	}
	return a, nil
}

// readAccess is one Deliver request's read permission.
type readAccess struct {
	ch      *channel
	sd      []*policy.SignedData
	expires time.Time
	checked bool
	seq     uint64
}

func (a *readAccess) Check() error {
	if !a.expires.IsZero() && time.Now().After(a.expires) {
		return fmt.Errorf("the client's certificate expired at %s", a.expires.UTC().Format(time.RFC3339))
	}
	cfg, err := a.ch.currentConfig()
	if err != nil {
		return err
	}
	if a.checked && cfg.Sequence == a.seq {
		return nil
	}
	if cfg.Policies == nil {
		if err := a.ch.reg.o.Verifier.Verify(a.sd[0].Identity, a.sd[0].Data, a.sd[0].Signature); err != nil {
			return fmt.Errorf("%w: %v", msgprocessor.ErrPermissionDenied, err)
		}
	} else {
		pol, ok := cfg.Policies.GetPolicy(policy.ChannelReaders)
		if !ok {
			return fmt.Errorf("%w: channel %s has no %s policy", msgprocessor.ErrPermissionDenied, a.ch.id, policy.ChannelReaders)
		}
		if err := pol.EvaluateSignedData(a.sd); err != nil {
			return fmt.Errorf("%w: %s: %v", msgprocessor.ErrPermissionDenied, policy.ChannelReaders, err)
		}
	}
	a.checked, a.seq = true, cfg.Sequence
	return nil
}

// currentConfig is the channel's config: the running chain's, or the ledger's before the
// chain starts.
func (ch *channel) currentConfig() (*channelconfig.Values, error) {
	ch.reg.mu.RLock()
	c := ch.chain
	ch.reg.mu.RUnlock()
	if c != nil {
		return c.Config(), nil
	}
	return ch.config()
}

// revalidator re-checks stale messages with the channel's message processor.
type revalidator struct{ p *msgprocessor.Processor }

func (v revalidator) ValidateNormal(cfg *channelconfig.Values, env *cb.Envelope) error {
	return v.p.ValidateNormal(cfg, env)
}

func (v revalidator) ReprocessConfig(cfg *channelconfig.Values, env *cb.Envelope) (*cb.Envelope, error) {
	return v.p.ReprocessConfig(cfg, env)
}

// HasChannel reports whether a channel exists.
func (r *Registrar) HasChannel(id string) bool {
	_, err := r.lookup(id)
	return err == nil
}
