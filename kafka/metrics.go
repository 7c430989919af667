package kafka

import "strings"

// ClientMetric is one of the metrics sarama keeps for a client (see sarama's documentation:
// incoming-byte-rate-for-broker-<id>, request-latency-in-ms-for-broker-<id>,
// record-send-rate-for-topic-<topic>, ...).
type ClientMetric struct {
	Name string
	// Meter is true for a meter (Rate is its one-minute rate per second), false for a
	// histogram (Mean is the mean of its sample).
	Meter bool
	Rate  float64
	Mean  float64
	// Count is the number of events a meter saw or values a histogram received.
	Count int64
}

// Metrics returns sarama's metrics of the producer's client.
func (p *Producer) Metrics() []ClientMetric { return clientMetrics(p.client.Config().MetricRegistry) }

// Metrics returns sarama's metrics of the consumer's client.
func (c *Consumer) Metrics() []ClientMetric { return clientMetrics(c.client.Config().MetricRegistry) }

// registry is the part of go-metrics' registry that is read here.
type registry interface {
	Each(func(name string, metric any))
}

func clientMetrics(r registry) []ClientMetric {
	if r == nil {
		return nil
	}
	type meter interface {
		Rate1() float64
		Count() int64
	}
	type histogram interface {
		Mean() float64
		Count() int64
	}
	var out []ClientMetric
	r.Each(func(name string, m any) {
		switch v := m.(type) {
		case meter:
			out = append(out, ClientMetric{Name: name, Meter: true, Rate: v.Rate1(), Count: v.Count()})
		case histogram:
			out = append(out, ClientMetric{Name: name, Mean: v.Mean(), Count: v.Count()})
		}
	})
	return out
}

// SplitMetricName splits a per-broker or per-topic sarama metric name into its base and the
// broker ID or topic: "request-rate-for-broker-2" gives "request-rate", "broker", "2". ok is
// false for the process-wide totals.
func SplitMetricName(name string) (base, kind, id string, ok bool) {
	for _, k := range []string{"broker", "topic"} {
		if i := strings.Index(name, "-for-"+k+"-"); i > 0 {
			return name[:i], k, name[i+len("-for-"+k+"-"):], true
		}
	}
	return name, "", "", false
}
