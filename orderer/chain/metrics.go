package chain

import (
	"time"

	"github.com/golang/protobuf/proto"
	cb "github.com/hyperledger/fabric-protos-go/common"
	ab "github.com/hyperledger/fabric-protos-go/orderer"
)

// Metrics is told what a chain does, for the orderer's metrics. Every method gets the channel
// ID, so one value serves every chain of the process.
type Metrics interface {
	// Committed is called after blocks were written in one ledger batch: last is the Kafka
	// metadata of the last of them, commit how long the ledger write took.
	Committed(channel string, written []*cb.Block, last *ab.KafkaMetadata, commit time.Duration)
	// BlockFilled is called when a block of normal envelopes is cut, with the time since the
	// first of them entered the pending batch (Fabric's blockcutter_block_fill_duration).
	BlockFilled(channel string, fill time.Duration)
	// Consumed is called after the record at offset was processed, with the partition's high
	// watermark (the offset after the last record the brokers hold).
	Consumed(channel string, offset, highWatermark int64)
	// Connected is called when the chain starts (true) or stops (false) consuming its
	// partition.
	Connected(channel string, up bool)
}

// fillClock measures how long blocks take to fill: from the arrival of the first envelope of
// a pending batch to the cut of its block.
type fillClock struct {
	since time.Time // when the pending batch got its first envelope; zero while it is empty
}

// step accounts for one consumed record (at now) after which pending envelopes wait, given
// what the record produced; observe gets the fill time of a normal block it cut.
func (f *fillClock) step(now time.Time, pending int, rd *Ready, observe func(time.Duration)) {
	if len(rd.Blocks) > 0 {
		if isNormal(rd.Blocks[0]) {
			start := f.since
			if start.IsZero() {
				start = now // the record itself opened the batch and closed it
			}
			observe(now.Sub(start))
		}
		f.since = time.Time{}
	}
	switch {
	case pending == 0:
		f.since = time.Time{}
	case f.since.IsZero():
		f.since = now
	}
}

// isNormal reports whether a cut block holds normal envelopes (not a config block).
func isNormal(b Block) bool {
	if b.Config != nil || b.NewChannel != nil {
		return false
	}
	data := b.Block.GetData().GetData()
	if len(data) != 1 {
		return true
	}
	env := &cb.Envelope{}
	if err := proto.Unmarshal(data[0], env); err != nil {
		return true
	}
	t, err := headerType(env)
	return err != nil || (t != cb.HeaderType_CONFIG && t != cb.HeaderType_ORDERER_TRANSACTION)
}
