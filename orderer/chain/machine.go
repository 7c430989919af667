package chain

import (
	"errors"
	"fmt"

	"github.com/golang/protobuf/proto"
	cb "github.com/hyperledger/fabric-protos-go/common"
	ab "github.com/hyperledger/fabric-protos-go/orderer"

	"github.com/kordhq/kord/orderer/blockcutter"
	"github.com/kordhq/kord/orderer/blocks"
	"github.com/kordhq/kord/orderer/channelconfig"
)

// freshOffset is the LastOffsetPersisted of a channel that has no Kafka metadata yet: one
// before sarama's "oldest offset" marker, so that consumption starts at the oldest record.
const freshOffset = -3

// Revalidator re-checks messages that were validated under an older config sequence. It is
// the seam to the message processors (signature, policy and config-update checks); the
// machine itself never looks at signatures.
type Revalidator interface {
	// ValidateNormal returns nil if env is still acceptable under cfg.
	ValidateNormal(cfg *channelconfig.Values, env *cb.Envelope) error
	// ReprocessConfig re-applies the config update behind a stale CONFIG (or, on the system
	// channel, ORDERER_TRANSACTION) envelope to cfg and returns the new envelope to order.
	ReprocessConfig(cfg *channelconfig.Values, env *cb.Envelope) (*cb.Envelope, error)
}

// TimerAction tells the driver what to do with the batch timer after a step.
type TimerAction int

const (
	// TimerKeep leaves the timer as it is.
	TimerKeep TimerAction = iota
	// TimerStart starts a BatchTimeout timer (none is running).
	TimerStart
	// TimerStop stops the running timer.
	TimerStop
)

// EventKind classifies what the machine noticed about a record that did not simply become
// part of a block. The driver logs events and counts them in metrics.
type EventKind int

// Event kinds.
const (
	EventSkipped     EventKind = iota // not a KafkaMessage, or one with no type
	EventConnect                      // CONNECT: ignored
	EventStaleTTC                     // TIME_TO_CUT for a block already cut
	EventBadTTC                       // TIME_TO_CUT that Fabric would halt on; ignored
	EventDuplicate                    // a re-submission already processed (OriginalOffset rule)
	EventDropped                      // re-validation failed
	EventResubmitted                  // stale config sequence: re-submitted
	EventConfigError                  // a committed config block whose config cannot be applied
	EventIgnored                      // a record at or below the last persisted offset
)

var eventNames = [...]string{"skipped", "connect", "stale-ttc", "bad-ttc", "duplicate", "dropped", "resubmitted", "config-error", "ignored"}

func (k EventKind) String() string {
	if int(k) < len(eventNames) {
		return eventNames[k]
	}
	return fmt.Sprintf("event(%d)", int(k))
}

// Event describes one notable record.
type Event struct {
	Offset int64
	Kind   EventKind
	Detail string
}

// Block is a block the machine cut, ready to be finished (signed) and written.
type Block struct {
	Block      *cb.Block
	Kafka      *ab.KafkaMetadata
	LastConfig uint64
	// Config is set when this block changed the channel's config; it is in force for every
	// record consumed after this block.
	Config *channelconfig.Values
	// NewChannel is set when this block is a system-channel ORDERER_TRANSACTION.
	NewChannel *NewChannel
}

// NewChannel is a channel created by an ORDERER_TRANSACTION: each orderer builds its block 0
// locally from the CONFIG envelope inside, so every orderer has the same one.
type NewChannel struct {
	ChannelID string
	Genesis   *cb.Block
	Config    *channelconfig.Values
}

// Ready is what one step asks the driver to do, in this order: write Blocks (in one batch),
// produce Post to the channel's topic, then apply Timer.
type Ready struct {
	Blocks []Block
	Post   []*ab.KafkaMessage
	Timer  TimerAction
	Events []Event
}

// State is what the machine starts from: the channel's last block and its config.
type State struct {
	LastBlock *cb.Block
	// LastConfigIndex is the number of the block that carries Config.
	LastConfigIndex uint64
	Config          *channelconfig.Values
}

// Machine is the Kafka consenter of one channel as a pure state machine: records of the
// channel's partition go in, in offset order; blocks, records to post and timer requests come
// out. It holds no goroutines, clocks or I/O, so tests feed recorded Kafka logs to it and get
// Fabric's blocks back.
type Machine struct {
	channelID string
	cfg       *channelconfig.Values
	cutter    *blockcutter.Cutter
	reval     Revalidator

	lastCut    uint64 // number of the last block cut
	prevHash   []byte // header hash of that block
	lastConfig uint64

	lastOffsetPersisted         int64
	lastOriginalOffsetProcessed int64
	lastResubmittedConfigOffset int64
	nextOffset                  int64 // one past the last record processed

	timerRunning bool
}

// NewMachine starts a machine from a channel's last block.
func NewMachine(st State, r Revalidator) (*Machine, error) {
	if st.LastBlock == nil || st.LastBlock.Header == nil {
		return nil, errors.New("chain: no last block")
	}
	if st.Config == nil {
		return nil, errors.New("chain: no config")
	}
	km, err := blocks.KafkaMetadata(st.LastBlock)
	if err != nil {
		return nil, fmt.Errorf("chain %s: %w", st.Config.ChannelID, err)
	}
	if km == nil {
		km = &ab.KafkaMetadata{LastOffsetPersisted: freshOffset}
	}
	m := &Machine{
		channelID:                   st.Config.ChannelID,
		cfg:                         st.Config,
		cutter:                      blockcutter.New(limits(st.Config)),
		reval:                       r,
		lastCut:                     st.LastBlock.Header.Number,
		prevHash:                    blocks.HeaderHash(st.LastBlock.Header),
		lastConfig:                  st.LastConfigIndex,
		lastOffsetPersisted:         km.LastOffsetPersisted,
		lastOriginalOffsetProcessed: km.LastOriginalOffsetProcessed,
		lastResubmittedConfigOffset: km.LastResubmittedConfigOffset,
	}
	m.nextOffset = m.lastOffsetPersisted + 1
	return m, nil
}

func limits(v *channelconfig.Values) blockcutter.Limits {
	return blockcutter.Limits{MaxMessageCount: v.BatchSize.MaxMessageCount, PreferredMaxBytes: v.BatchSize.PreferredMaxBytes}
}

// StartOffset is the offset consumption must start from after a (re)start: one past the last
// offset persisted in the ledger (sarama's oldest-offset marker for a fresh channel).
func (m *Machine) StartOffset() int64 { return m.lastOffsetPersisted + 1 }

// NextOffset is one past the last record processed: where to resume after a consumer error
// without losing the pending batch.
func (m *Machine) NextOffset() int64 { return m.nextOffset }

// Config is the config in force.
func (m *Machine) Config() *channelconfig.Values { return m.cfg }

// Pending is the number of envelopes waiting in the pending batch.
func (m *Machine) Pending() int { return m.cutter.Pending() }

// Height is the number of blocks of the channel.
func (m *Machine) Height() uint64 { return m.lastCut + 1 }

// ConfigPending reports whether a re-submitted config message is on its way through Kafka.
// While it is, Broadcast holds new messages back, so that none of them is validated against
// the config that the re-submitted message is about to replace.
func (m *Machine) ConfigPending() bool {
	return m.lastResubmittedConfigOffset != 0 && m.lastResubmittedConfigOffset > m.lastOriginalOffsetProcessed
}

// TimerFired is called when the batch timer expires: it returns the TIME_TO_CUT to post for
// the next block. The timer is not re-armed until the next message.
func (m *Machine) TimerFired() *ab.KafkaMessage {
	m.timerRunning = false
	return timeToCut(m.lastCut + 1)
}

// Step processes the record at offset with the given value.
func (m *Machine) Step(offset int64, value []byte) Ready {
	var rd Ready
	if offset <= m.lastOffsetPersisted {
		rd.event(offset, EventIgnored, "at or below the last offset persisted")
		return rd
	}
	m.nextOffset = offset + 1
	msg := &ab.KafkaMessage{}
	if err := proto.Unmarshal(value, msg); err != nil {
		rd.event(offset, EventSkipped, "value is not a KafkaMessage: "+err.Error())
		return rd
	}
	switch t := msg.Type.(type) {
	case *ab.KafkaMessage_Connect:
		rd.event(offset, EventConnect, "")
	case *ab.KafkaMessage_TimeToCut:
		m.timeToCut(offset, t.TimeToCut.GetBlockNumber(), &rd)
	case *ab.KafkaMessage_Regular:
		m.regular(offset, t.Regular, &rd)
	default:
		rd.event(offset, EventSkipped, "KafkaMessage has no type")
	}
	return rd
}

func (rd *Ready) event(offset int64, k EventKind, detail string) {
	rd.Events = append(rd.Events, Event{Offset: offset, Kind: k, Detail: detail})
}

func (m *Machine) timeToCut(offset int64, number uint64, rd *Ready) {
	next := m.lastCut + 1
	switch {
	case number < next:
		rd.event(offset, EventStaleTTC, fmt.Sprintf("time-to-cut for block %d, already cut", number))
	case number > next:
		// Fabric halts the channel here. A consistent log cannot hold such a record, so it
		// is reported and ignored: halting would only stop the channel for good.
		rd.event(offset, EventBadTTC, fmt.Sprintf("time-to-cut for block %d, next block is %d", number, next))
	default:
		batch := m.cutter.Cut()
		m.stopTimer(rd)
		if len(batch) == 0 {
			// Fabric stops consuming the channel on this record while Broadcast keeps
			// acknowledging; ignoring it keeps acknowledged envelopes flowing and leaves the
			// next block number unchanged, so mixed clusters agree on every block written.
			rd.event(offset, EventBadTTC, fmt.Sprintf("time-to-cut for block %d with nothing pending", number))
			return
		}
		// Fabric leaves LastResubmittedConfigOffset out of time-cut blocks; so must we.
		m.cut(batch, offset, m.lastOriginalOffsetProcessed, 0, rd)
	}
}

func (m *Machine) regular(offset int64, reg *ab.KafkaMessageRegular, rd *Ready) {
	// The common case, a normal message validated under the config in force, needs neither
	// the decoded envelope nor a re-encoding when the payload already is the encoding Fabric
	// would write into the block.
	if reg.Class == ab.KafkaMessageRegular_NORMAL && m.cfg.Resubmission() && reg.ConfigSeq >= m.cfg.Sequence &&
		(reg.OriginalOffset == 0 || reg.OriginalOffset > m.lastOriginalOffsetProcessed) {
		if size, ok := canonicalEnvelope(reg.Payload); ok {
			m.commitMessage(offset, blockcutter.Message{Data: reg.Payload, Size: size}, m.newOriginal(reg.OriginalOffset), rd)
			return
		}
	}
	env := &cb.Envelope{}
	if err := proto.Unmarshal(reg.Payload, env); err != nil {
		rd.event(offset, EventDropped, "payload is not an envelope: "+err.Error())
		return
	}
	seq := m.cfg.Sequence
	if reg.Class == ab.KafkaMessageRegular_UNKNOWN || !m.cfg.Resubmission() {
		m.compatible(offset, env, rd)
		return
	}
	switch reg.Class {
	case ab.KafkaMessageRegular_NORMAL:
		if reg.OriginalOffset != 0 && reg.OriginalOffset <= m.lastOriginalOffsetProcessed {
			rd.event(offset, EventDuplicate, fmt.Sprintf("original offset %d already processed", reg.OriginalOffset))
			return
		}
		if reg.ConfigSeq < seq {
			if err := m.reval.ValidateNormal(m.cfg, env); err != nil {
				rd.event(offset, EventDropped, fmt.Sprintf("config sequence %d < %d, re-validation failed: %v", reg.ConfigSeq, seq, err))
				return
			}
			m.resubmit(offset, env, ab.KafkaMessageRegular_NORMAL, rd)
			return
		}
		m.commitNormal(offset, env, m.newOriginal(reg.OriginalOffset), rd)
	case ab.KafkaMessageRegular_CONFIG:
		if reg.OriginalOffset != 0 {
			if reg.OriginalOffset <= m.lastOriginalOffsetProcessed {
				rd.event(offset, EventDuplicate, fmt.Sprintf("original offset %d already processed", reg.OriginalOffset))
				return
			}
			// Another orderer may have re-submitted a config message that this one found
			// invalid; following its mark keeps every orderer's metadata equal.
			if reg.OriginalOffset > m.lastResubmittedConfigOffset {
				m.lastResubmittedConfigOffset = reg.OriginalOffset
			}
		}
		if reg.ConfigSeq < seq {
			newEnv, err := m.reval.ReprocessConfig(m.cfg, env)
			if err != nil {
				rd.event(offset, EventDropped, fmt.Sprintf("config sequence %d < %d, config re-processing failed: %v", reg.ConfigSeq, seq, err))
				return
			}
			m.resubmit(offset, newEnv, ab.KafkaMessageRegular_CONFIG, rd)
			m.lastResubmittedConfigOffset = offset
			return
		}
		m.commitConfig(offset, env, m.newOriginal(reg.OriginalOffset), rd)
	default:
		rd.event(offset, EventDropped, fmt.Sprintf("unknown message class %d", reg.Class))
	}
}

// newOriginal is the LastOriginalOffsetProcessed that committing a message moves to: its
// original offset if it is a re-submission, else unchanged.
func (m *Machine) newOriginal(orig int64) int64 {
	if orig == 0 {
		return m.lastOriginalOffsetProcessed
	}
	return orig
}

// compatible handles messages from orderers that predate re-submission (class UNKNOWN), or
// every message when the channel's capabilities do not enable it: each is re-validated at
// consumption, whatever its config sequence, and committed in place.
func (m *Machine) compatible(offset int64, env *cb.Envelope, rd *Ready) {
	ht, err := headerType(env)
	if err != nil {
		rd.event(offset, EventDropped, "compatibility mode: "+err.Error())
		return
	}
	switch ht {
	case cb.HeaderType_CONFIG_UPDATE:
		rd.event(offset, EventDropped, "compatibility mode: CONFIG_UPDATE cannot be ordered as is")
	case cb.HeaderType_CONFIG, cb.HeaderType_ORDERER_TRANSACTION:
		if _, err := m.reval.ReprocessConfig(m.cfg, env); err != nil {
			rd.event(offset, EventDropped, "compatibility mode: config re-validation failed: "+err.Error())
			return
		}
		m.commitConfig(offset, env, m.lastOriginalOffsetProcessed, rd)
	default:
		if err := m.reval.ValidateNormal(m.cfg, env); err != nil {
			rd.event(offset, EventDropped, "compatibility mode: re-validation failed: "+err.Error())
			return
		}
		m.commitNormal(offset, env, m.lastOriginalOffsetProcessed, rd)
	}
}

func (m *Machine) resubmit(offset int64, env *cb.Envelope, class ab.KafkaMessageRegular_Class, rd *Ready) {
	payload, err := proto.Marshal(env)
	if err != nil {
		rd.event(offset, EventDropped, "re-encoding for re-submission: "+err.Error())
		return
	}
	rd.Post = append(rd.Post, &ab.KafkaMessage{Type: &ab.KafkaMessage_Regular{Regular: &ab.KafkaMessageRegular{
		Payload: payload, ConfigSeq: m.cfg.Sequence, Class: class, OriginalOffset: offset,
	}}})
	rd.event(offset, EventResubmitted, fmt.Sprintf("%s message re-submitted under config sequence %d", class, m.cfg.Sequence))
}

// message turns an envelope into what the cutter holds: its canonical encoding (what Fabric
// writes into blocks, and what peers check entries against) and its size as Fabric counts it.
func message(env *cb.Envelope) (blockcutter.Message, error) {
	data, err := proto.Marshal(env)
	if err != nil {
		return blockcutter.Message{}, err
	}
	return blockcutter.Message{Data: data, Size: uint32(len(env.Payload) + len(env.Signature))}, nil
}

func (m *Machine) commitNormal(offset int64, env *cb.Envelope, newOriginal int64, rd *Ready) {
	msg, err := message(env)
	if err != nil {
		rd.event(offset, EventDropped, "re-encoding envelope: "+err.Error())
		return
	}
	m.commitMessage(offset, msg, newOriginal, rd)
}

func (m *Machine) commitMessage(offset int64, msg blockcutter.Message, newOriginal int64, rd *Ready) {
	batches, pending := m.cutter.Ordered(msg)
	switch {
	case pending && !m.timerRunning:
		m.timerRunning = true
		rd.Timer = TimerStart
	case !pending && m.timerRunning:
		m.stopTimer(rd)
	}
	if len(batches) == 0 {
		m.lastOriginalOffsetProcessed = newOriginal
		return
	}
	// When the message itself is not in the first batch, that block ends one record earlier
	// and keeps the old original offset. When it stays pending after the cut, Fabric does not
	// advance LastOriginalOffsetProcessed at all; the same quirk is kept so that blocks match.
	lop := offset
	if pending || len(batches) == 2 {
		lop = offset - 1
	} else {
		m.lastOriginalOffsetProcessed = newOriginal
	}
	m.cut(batches[0], lop, m.lastOriginalOffsetProcessed, m.lastResubmittedConfigOffset, rd)
	if len(batches) == 2 {
		m.lastOriginalOffsetProcessed = newOriginal
		m.cut(batches[1], offset, m.lastOriginalOffsetProcessed, m.lastResubmittedConfigOffset, rd)
	}
}

func (m *Machine) commitConfig(offset int64, env *cb.Envelope, newOriginal int64, rd *Ready) {
	if batch := m.cutter.Cut(); len(batch) > 0 {
		m.cut(batch, offset-1, m.lastOriginalOffsetProcessed, m.lastResubmittedConfigOffset, rd)
	}
	m.lastOriginalOffsetProcessed = newOriginal
	msg, err := message(env)
	if err != nil {
		rd.event(offset, EventDropped, "re-encoding config envelope: "+err.Error())
		return
	}
	m.cut(blockcutter.Batch{msg}, offset, m.lastOriginalOffsetProcessed, m.lastResubmittedConfigOffset, rd)
	m.applyConfig(offset, env, rd)
	m.stopTimer(rd)
}

func (m *Machine) stopTimer(rd *Ready) {
	if m.timerRunning {
		m.timerRunning = false
		rd.Timer = TimerStop
	}
}

// cut appends the next block for batch to rd.
func (m *Machine) cut(batch blockcutter.Batch, lop, loop, lrco int64, rd *Ready) {
	data := make([][]byte, len(batch))
	for i, msg := range batch {
		data[i] = msg.Data
	}
	b := blocks.New(m.lastCut+1, m.prevHash, data)
	m.lastCut++
	m.prevHash = blocks.HeaderHash(b.Header)
	m.lastOffsetPersisted = lop
	rd.Blocks = append(rd.Blocks, Block{
		Block:      b,
		Kafka:      &ab.KafkaMetadata{LastOffsetPersisted: lop, LastOriginalOffsetProcessed: loop, LastResubmittedConfigOffset: lrco},
		LastConfig: m.lastConfig,
	})
}

// applyConfig makes the config block just cut (the last of rd.Blocks) take effect.
func (m *Machine) applyConfig(offset int64, env *cb.Envelope, rd *Ready) {
	blk := &rd.Blocks[len(rd.Blocks)-1]
	ht, err := headerType(env)
	if err != nil {
		rd.event(offset, EventConfigError, "config block "+fmt.Sprint(blk.Block.Header.Number)+": "+err.Error())
		return
	}
	switch ht {
	case cb.HeaderType_CONFIG:
		v, err := channelconfig.FromEnvelope(env)
		if err != nil {
			rd.event(offset, EventConfigError, fmt.Sprintf("config block %d: %v; keeping config sequence %d", blk.Block.Header.Number, err, m.cfg.Sequence))
			return
		}
		if v.Sequence > m.cfg.Sequence {
			m.lastConfig = blk.Block.Header.Number
			blk.LastConfig = m.lastConfig
		}
		v.ChannelID = m.channelID
		m.cfg = v
		m.cutter.SetLimits(limits(v))
		blk.Config = v
	case cb.HeaderType_ORDERER_TRANSACTION:
		nc, err := newChannel(env)
		if err != nil {
			rd.event(offset, EventConfigError, fmt.Sprintf("orderer transaction in block %d: %v", blk.Block.Header.Number, err))
			return
		}
		blk.NewChannel = nc
	default:
		rd.event(offset, EventConfigError, fmt.Sprintf("config block %d holds a %s envelope", blk.Block.Header.Number, ht))
	}
}

func newChannel(env *cb.Envelope) (*NewChannel, error) {
	payload := &cb.Payload{}
	if err := proto.Unmarshal(env.Payload, payload); err != nil {
		return nil, fmt.Errorf("payload: %w", err)
	}
	inner := &cb.Envelope{}
	if err := proto.Unmarshal(payload.Data, inner); err != nil {
		return nil, fmt.Errorf("inner envelope: %w", err)
	}
	v, err := channelconfig.FromEnvelope(inner)
	if err != nil {
		return nil, fmt.Errorf("new channel config: %w", err)
	}
	data, err := proto.Marshal(inner)
	if err != nil {
		return nil, fmt.Errorf("inner envelope: %w", err)
	}
	return &NewChannel{ChannelID: v.ChannelID, Genesis: blocks.New(0, nil, [][]byte{data}), Config: v}, nil
}

func headerType(env *cb.Envelope) (cb.HeaderType, error) {
	payload := &cb.Payload{}
	if err := proto.Unmarshal(env.Payload, payload); err != nil {
		return 0, fmt.Errorf("payload: %w", err)
	}
	if payload.Header == nil {
		return 0, errors.New("payload has no header")
	}
	chdr := &cb.ChannelHeader{}
	if err := proto.Unmarshal(payload.Header.ChannelHeader, chdr); err != nil {
		return 0, fmt.Errorf("channel header: %w", err)
	}
	return cb.HeaderType(chdr.Type), nil
}

func timeToCut(n uint64) *ab.KafkaMessage {
	return &ab.KafkaMessage{Type: &ab.KafkaMessage_TimeToCut{TimeToCut: &ab.KafkaMessageTimeToCut{BlockNumber: n}}}
}
