package loadgen

import (
	"math"
	"math/bits"
	"time"
)

// Histogram buckets durations on a log-linear scale of microseconds: exact below 128µs,
// then 64 buckets per power of two (a relative error under 1.6%), up to about 2^40µs (12
// days); longer values fall into the last bucket. Its size is fixed whatever the number of
// values, so a long run does not grow it. Not safe for concurrent use: each goroutine keeps
// its own and Merge combines them.
type Histogram struct {
	counts   [histBuckets]uint64
	n        uint64
	sum      float64 // µs
	min, max time.Duration
}

const (
	histSubBits  = 6
	histSub      = 1 << histSubBits // buckets per power of two
	histLinear   = 2 * histSub      // values below this are exact
	histMaxShift = 34
	histBuckets  = histLinear + histMaxShift*histSub
)

func bucketOf(us uint64) int {
	if us < histLinear {
		return int(us)
	}
	shift := bits.Len64(us) - histSubBits - 1 // >= 1
	if shift > histMaxShift {
		return histBuckets - 1
	}
	top := us >> uint(shift) // in [histSub, 2*histSub)
	return histLinear + (shift-1)*histSub + int(top-histSub)
}

// bucketUpper is the largest value (µs) of bucket i.
func bucketUpper(i int) uint64 {
	if i < histLinear {
		return uint64(i)
	}
	shift := (i-histLinear)/histSub + 1
	top := uint64((i-histLinear)%histSub + histSub)
	return (top+1)<<uint(shift) - 1
}

// Record adds one value; negative values count as zero.
func (h *Histogram) Record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.counts[bucketOf(uint64(d/time.Microsecond))]++
	if h.n == 0 || d < h.min {
		h.min = d
	}
	if d > h.max {
		h.max = d
	}
	h.n++
	h.sum += float64(d) / float64(time.Microsecond)
}

// Merge adds every value of o.
func (h *Histogram) Merge(o *Histogram) {
	if o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	if o.max > h.max {
		h.max = o.max
	}
	h.n += o.n
	h.sum += o.sum
}

// Count is the number of values recorded.
func (h *Histogram) Count() uint64 { return h.n }

// Quantile returns the value below which a fraction q (0..1] of the values lie: the upper
// bound of the bucket holding the value of rank ceil(q·n), never more than the largest value
// recorded. It is 0 for an empty histogram.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = max(rank, 1)
	rank = min(rank, h.n)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			d := time.Duration(bucketUpper(i)) * time.Microsecond
			return max(min(d, h.max), h.min)
		}
	}
	return h.max
}

// Mean is the average value.
func (h *Histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.sum / float64(h.n) * float64(time.Microsecond))
}

// Max is the largest value recorded.
func (h *Histogram) Max() time.Duration { return h.max }

// Min is the smallest value recorded.
func (h *Histogram) Min() time.Duration { return h.min }
