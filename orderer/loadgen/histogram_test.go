package loadgen

import (
	"context"
	"math/rand/v2"
	"sort"
	"sync/atomic"
	"testing"
	"time"
)

func TestBucketsCoverEveryValueOnce(t *testing.T) {
	// Every bucket's range starts right after the previous one's.
	prev := uint64(0)
	for i := 1; i < histBuckets; i++ {
		up := bucketUpper(i)
		if up <= prev {
			t.Fatalf("bucket %d upper %d not above bucket %d's %d", i, up, i-1, prev)
		}
		if got := bucketOf(prev + 1); got != i {
			t.Fatalf("value %d: bucket %d, want %d", prev+1, got, i)
		}
		if got := bucketOf(up); got != i {
			t.Fatalf("value %d (upper of %d): bucket %d", up, i, got)
		}
		prev = up
	}
	if got := bucketOf(1 << 62); got != histBuckets-1 {
		t.Fatalf("huge value in bucket %d", got)
	}
}

func TestHistogramQuantiles(t *testing.T) {
	var h Histogram
	if h.Quantile(0.5) != 0 || h.Count() != 0 {
		t.Fatal("empty histogram is not zero")
	}
	// 1..10000 ms: the q-quantile is q·10000 ms, within the bucket resolution.
	vals := make([]time.Duration, 10000)
	for i := range vals {
		vals[i] = time.Duration(i+1) * time.Millisecond
	}
	rand.Shuffle(len(vals), func(i, j int) { vals[i], vals[j] = vals[j], vals[i] })
	for _, v := range vals {
		h.Record(v)
	}
	for _, q := range []float64{0.01, 0.5, 0.95, 0.99, 1} {
		want := time.Duration(q*10000) * time.Millisecond
		got := h.Quantile(q)
		if got < want || float64(got-want) > 0.016*float64(want) {
			t.Errorf("q=%v: %v, want %v (+1.6%%)", q, got, want)
		}
	}
	if h.Max() != 10*time.Second || h.Min() != time.Millisecond {
		t.Errorf("min/max %v/%v", h.Min(), h.Max())
	}
	if m := h.Mean(); m < 5000*time.Millisecond || m > 5001*time.Millisecond {
		t.Errorf("mean %v", m)
	}
	if h.Quantile(1) != h.Max() {
		t.Errorf("p100 %v != max %v", h.Quantile(1), h.Max())
	}
}

func TestHistogramMatchesSortedSample(t *testing.T) {
	var h Histogram
	vals := make([]time.Duration, 5000)
	for i := range vals {
		// Log-normal-ish spread from µs to seconds.
		vals[i] = time.Duration(rand.ExpFloat64() * rand.ExpFloat64() * float64(20*time.Millisecond))
		h.Record(vals[i])
	}
	sort.Slice(vals, func(i, j int) bool { return vals[i] < vals[j] })
	for _, q := range []float64{0.5, 0.95, 0.99} {
		exact := vals[int(q*float64(len(vals)))-1]
		got := h.Quantile(q)
		if got < exact-time.Microsecond || float64(got-exact) > 0.016*float64(exact)+float64(time.Microsecond) {
			t.Errorf("q=%v: %v, exact %v", q, got, exact)
		}
	}
}

func TestHistogramMerge(t *testing.T) {
	var a, b, all Histogram
	for i := range 1000 {
		d := time.Duration(i) * 37 * time.Microsecond
		all.Record(d)
		if i%3 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
	}
	var m Histogram
	m.Merge(&a)
	m.Merge(&b)
	m.Merge(&Histogram{})
	if m != all {
		t.Fatalf("merged histogram differs: n %d/%d, min %v/%v, max %v/%v", m.n, all.n, m.min, all.min, m.max, all.max)
	}
	var neg Histogram
	neg.Record(-time.Second)
	if neg.Quantile(0.5) != 0 {
		t.Fatal("negative value not recorded as 0")
	}
}

func TestPacer(t *testing.T) {
	start := time.Now()
	p := newPacer(start, 2000)
	if d := p.due(2000).Sub(start); d != time.Second {
		t.Fatalf("envelope 2000 due after %v, want 1s", d)
	}
	if newPacer(start, 0).due(1e9) != start {
		t.Fatal("unpaced envelope not due at once")
	}
	// 200 envelopes at 1000/s over 4 goroutines take about 0.2s, not less.
	p = newPacer(time.Now(), 1000)
	var next uint64
	done := make(chan struct{})
	ctx := context.Background()
	for range 4 {
		go func() {
			for {
				k := atomicNext(&next)
				if k >= 200 {
					done <- struct{}{}
					return
				}
				p.wait(ctx, k)
			}
		}()
	}
	for range 4 {
		<-done
	}
	if el := time.Since(p.start); el < 199*time.Millisecond || el > 2*time.Second {
		t.Fatalf("200 envelopes at 1000/s took %v", el)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if newPacer(time.Now(), 1).wait(cctx, 10) {
		t.Fatal("wait did not notice a cancelled context")
	}
}

func atomicNext(p *uint64) uint64 { return atomic.AddUint64(p, 1) - 1 }
