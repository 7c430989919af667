package blockcutter

import "testing"

// BenchmarkOrdered: 1 KiB messages into blocks of 500 (the benchmark settings).
func BenchmarkOrdered(b *testing.B) {
	c := New(Limits{MaxMessageCount: 500, PreferredMaxBytes: 2 << 20})
	m := Message{Data: make([]byte, 1024), Size: 1024}
	b.ReportAllocs()
	blocks := 0
	for b.Loop() {
		batches, _ := c.Ordered(m)
		blocks += len(batches)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}
