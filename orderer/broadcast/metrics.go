package broadcast

import (
	"time"

	cb "github.com/hyperledger/fabric-protos-go/common"
)

// Metrics is told how every envelope went (the orderer implements it with Fabric's
// broadcast_validate_duration, broadcast_enqueue_duration and broadcast_processed_count).
type Metrics interface {
	Processed(o Outcome)
}

// Outcome is what happened to one envelope.
type Outcome struct {
	// Channel and Type (the header type's name) are empty when the envelope could not be
	// parsed.
	Channel string
	Type    string
	Status  cb.Status
	// Validate is how long parsing and checking took; Enqueue how long handing the envelope
	// to Kafka took, up to its acknowledgement (zero when it was refused before).
	Validate time.Duration
	Enqueue  time.Duration
}

// timings are an item's measurements. Each is written by one stage and read by later ones
// after a channel hand-over.
type timings struct {
	validate     time.Duration
	enqueueStart time.Time
}

func (h *Handler) record(it *item, status cb.Status) {
	if h.Metrics == nil {
		return
	}
	o := Outcome{Status: status, Validate: it.t.validate}
	if it.parsed != nil {
		o.Channel, o.Type = it.parsed.ChannelHeader.ChannelId, cb.HeaderType(it.parsed.ChannelHeader.Type).String()
	}
	if !it.t.enqueueStart.IsZero() {
		o.Enqueue = time.Since(it.t.enqueueStart)
	}
	h.Metrics.Processed(o)
}
