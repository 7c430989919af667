package server

import (
	"net/http"

	cb "github.com/hyperledger/fabric-protos-go/common"
	ab "github.com/hyperledger/fabric-protos-go/orderer"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/kordhq/kord/orderer/chain"
)

// metrics holds the process's Prometheus collectors, under Fabric's names where Fabric has
// them.
type metrics struct {
	reg        *prometheus.Registry
	height     *prometheus.GaugeVec
	lastOffset *prometheus.GaugeVec
	processed  *prometheus.CounterVec
	events     *prometheus.CounterVec
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		height: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "ledger", Name: "blockchain_height", Help: "Height of the chain in blocks.",
		}, []string{"channel"}),
		lastOffset: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "consensus", Subsystem: "kafka", Name: "last_offset_persisted", Help: "The offset specified in the block metadata of the most recently committed block.",
		}, []string{"channel"}),
		processed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "broadcast", Name: "processed_count", Help: "The number of transactions processed.",
		}, []string{"channel", "type", "status"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "kord", Subsystem: "chain", Name: "records_noted_total", Help: "Consumed records that did not simply join a block, by kind (stale time-to-cut, duplicate, dropped, ...).",
		}, []string{"channel", "kind"}),
	}
	m.reg.MustRegister(m.height, m.lastOffset, m.processed, m.events,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) handler(provider string) http.Handler {
	if provider != "" && provider != "prometheus" {
		return http.NotFoundHandler()
	}
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

func (m *metrics) blocksWritten(channel string, bs []*cb.Block, last *ab.KafkaMetadata) {
	m.height.WithLabelValues(channel).Set(float64(bs[len(bs)-1].Header.Number + 1))
	m.lastOffset.WithLabelValues(channel).Set(float64(last.LastOffsetPersisted))
}

func (m *metrics) chainEvent(channel string, ev chain.Event) {
	m.events.WithLabelValues(channel, ev.Kind.String()).Inc()
}

// Processed implements broadcast.Observer.
func (m *metrics) Processed(channel string, t cb.HeaderType, status cb.Status) {
	m.processed.WithLabelValues(channel, t.String(), status.String()).Inc()
}
