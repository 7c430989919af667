package loadgen

import (
	"context"
	"time"
)

// pacer spreads an offered rate over every stream: envelope k (numbered across the whole
// run, whichever stream sends it) is due at start + k/rate. A stream that falls behind sends
// at once, so the offered load stays open-loop (the orderer's slowness does not lower it, it
// shows as latency). A zero rate means no pacing.
type pacer struct {
	start    time.Time
	interval float64 // ns between envelopes; 0: unpaced
}

func newPacer(start time.Time, rate float64) pacer {
	p := pacer{start: start}
	if rate > 0 {
		p.interval = float64(time.Second) / rate
	}
	return p
}

// due is when envelope k may be sent.
func (p pacer) due(k uint64) time.Time {
	if p.interval == 0 {
		return p.start
	}
	return p.start.Add(time.Duration(float64(k) * p.interval))
}

// wait blocks until envelope k is due or ctx ends (false).
func (p pacer) wait(ctx context.Context, k uint64) bool {
	if p.interval == 0 {
		return ctx.Err() == nil
	}
	d := time.Until(p.due(k))
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
