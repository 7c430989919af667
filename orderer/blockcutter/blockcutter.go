// Package blockcutter owns the batching rules of Fabric's ordering service: which consumed
// messages go together into one block. It is pure: no clocks, no I/O. Time-based cuts are
// decided elsewhere (a TIME_TO_CUT record in the Kafka log) and arrive here as a call to Cut.
//
// The rules, in the order they are applied to each message:
//   - a message larger than PreferredMaxBytes is cut alone, after the pending batch (if any);
//   - a message that would push the pending batch past PreferredMaxBytes first cuts the batch;
//   - the message joins the pending batch, which is cut once it holds MaxMessageCount messages.
//
// AbsoluteMaxBytes is not a cutting rule: Broadcast refuses larger envelopes before they are
// ever produced to Kafka.
package blockcutter

// Limits are the BatchSize values of the channel config that cutting depends on.
type Limits struct {
	MaxMessageCount   uint32
	PreferredMaxBytes uint32
}

// Message is one envelope as the cutter sees it: its bytes as they will appear in the block,
// and its size as Fabric counts it (len(Payload) + len(Signature), not the encoded length).
type Message struct {
	Data []byte
	Size uint32
}

// Batch is the content of one block, in order.
type Batch []Message

// Cutter holds the pending batch of one channel.
type Cutter struct {
	limits       Limits
	pending      Batch
	pendingBytes uint64
}

// New returns a cutter with an empty pending batch.
func New(l Limits) *Cutter { return &Cutter{limits: l} }

// SetLimits applies a new channel config. The pending batch is kept: Fabric cuts it before a
// config message is ordered, so in practice it is empty here.
func (c *Cutter) SetLimits(l Limits) { c.limits = l }

// Limits returns the limits in force.
func (c *Cutter) Limits() Limits { return c.limits }

// Ordered adds m and returns the batches it completes (zero, one or two), and whether
// messages are left pending afterwards.
func (c *Cutter) Ordered(m Message) (batches []Batch, pending bool) {
	if m.Size > c.limits.PreferredMaxBytes {
		if len(c.pending) > 0 {
			batches = append(batches, c.Cut())
		}
		return append(batches, Batch{m}), false
	}
	if c.pendingBytes+uint64(m.Size) > uint64(c.limits.PreferredMaxBytes) {
		batches = append(batches, c.Cut())
	}
	c.pending = append(c.pending, m)
	c.pendingBytes += uint64(m.Size)
	// A MaxMessageCount of 0 is refused by config validation; treat it as 1 so that a bad
	// config can never make the cutter hold messages forever.
	if uint32(len(c.pending)) >= max(c.limits.MaxMessageCount, 1) {
		batches = append(batches, c.Cut())
	}
	return batches, len(c.pending) > 0
}

// Cut returns the pending batch (nil when empty) and starts a new one.
func (c *Cutter) Cut() Batch {
	b := c.pending
	c.pending = nil
	c.pendingBytes = 0
	return b
}

// Pending reports how many messages wait in the pending batch.
func (c *Cutter) Pending() int { return len(c.pending) }
