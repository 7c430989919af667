package server

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	cb "github.com/hyperledger/fabric-protos-go/common"
	ab "github.com/hyperledger/fabric-protos-go/orderer"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"google.golang.org/grpc"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"

	"github.com/kordhq/kord/kafka"
	"github.com/kordhq/kord/orderer/broadcast"
	"github.com/kordhq/kord/orderer/chain"
	"github.com/kordhq/kord/orderer/logging"
)

// metrics holds the process's Prometheus collectors: Fabric's orderer metrics under Fabric's
// names and labels, and kord's additions (prefix kord_). It implements the metric hooks of
// broadcast, deliver, chain and logging, so those packages know nothing of Prometheus. The
// README lists every metric.
type metrics struct {
	reg *prometheus.Registry

	broadcastValidate  *prometheus.HistogramVec
	broadcastEnqueue   *prometheus.HistogramVec
	broadcastProcessed *prometheus.CounterVec

	deliverOpened    prometheus.Counter
	deliverClosed    prometheus.Counter
	deliverReceived  *prometheus.CounterVec
	deliverCompleted *prometheus.CounterVec
	deliverBlocks    *prometheus.CounterVec

	commitTime *prometheus.HistogramVec
	blockFill  *prometheus.HistogramVec
	lastOffset *prometheus.GaugeVec

	grpcReceived   *prometheus.CounterVec
	grpcCompleted  *prometheus.CounterVec
	grpcDuration   *prometheus.HistogramVec
	grpcMsgsIn     *prometheus.CounterVec
	grpcMsgsOut    *prometheus.CounterVec
	grpcConnOpened prometheus.Counter
	grpcConnClosed prometheus.Counter

	logChecked *prometheus.CounterVec
	logWritten *prometheus.CounterVec

	events     *prometheus.CounterVec
	lag        *prometheus.GaugeVec
	reconnects *prometheus.CounterVec

	mu        sync.Mutex
	lastBlock map[string]time.Time // channel → when its last block was written (or, at start, made)
	everUp    map[string]bool      // channels that have been connected once

	// Set once the server is wired: what the scrape-time collector reads.
	chains func() []chainStatus
	kafka  func() []kafka.ClientMetric
	now    func() time.Time
}

func newMetrics(version string) *metrics {
	ch := []string{"channel"}
	bcast := []string{"channel", "type", "status"}
	dlv := []string{"channel", "filtered", "data_type"}
	svc := []string{"service", "method"}
	svcCode := []string{"service", "method", "code"}
	m := &metrics{
		reg:       prometheus.NewRegistry(),
		lastBlock: map[string]time.Time{},
		everUp:    map[string]bool{},
		now:       time.Now,

		broadcastValidate: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "broadcast", Name: "validate_duration", Help: "The time to validate a transaction in seconds.",
		}, bcast),
		broadcastEnqueue: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "broadcast", Name: "enqueue_duration", Help: "The time to enqueue a transaction in seconds.",
		}, bcast),
		broadcastProcessed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "broadcast", Name: "processed_count", Help: "The number of transactions processed.",
		}, bcast),

		deliverOpened: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "deliver", Name: "streams_opened", Help: "The number of GRPC streams that have been opened for the deliver service.",
		}),
		deliverClosed: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "deliver", Name: "streams_closed", Help: "The number of GRPC streams that have been closed for the deliver service.",
		}),
		deliverReceived: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "deliver", Name: "requests_received", Help: "The number of deliver requests that have been received.",
		}, dlv),
		deliverCompleted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "deliver", Name: "requests_completed", Help: "The number of deliver requests that have been completed.",
		}, append(dlv, "success")),
		deliverBlocks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "deliver", Name: "blocks_sent", Help: "The number of blocks sent by the deliver service.",
		}, dlv),

		commitTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "ledger", Name: "blockstorage_commit_time", Help: "Time taken in seconds for committing the block to storage.",
			Buckets: []float64{0.005, 0.01, 0.015, 0.05, 0.1, 1, 10},
		}, ch),
		blockFill: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "blockcutter", Name: "block_fill_duration", Help: "The time from first transaction enqueing to the block being cut in seconds.",
		}, ch),
		lastOffset: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "consensus", Subsystem: "kafka", Name: "last_offset_persisted", Help: "The offset specified in the block metadata of the most recently committed block.",
		}, ch),

		grpcReceived: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "grpc", Subsystem: "server", Name: "stream_requests_received", Help: "The number of stream requests received.",
		}, svc),
		grpcCompleted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "grpc", Subsystem: "server", Name: "stream_requests_completed", Help: "The number of stream requests completed.",
		}, svcCode),
		grpcDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "grpc", Subsystem: "server", Name: "stream_request_duration", Help: "The time to complete a stream request.",
		}, svcCode),
		grpcMsgsIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "grpc", Subsystem: "server", Name: "stream_messages_received", Help: "The number of stream messages received.",
		}, svc),
		grpcMsgsOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "grpc", Subsystem: "server", Name: "stream_messages_sent", Help: "The number of stream messages sent.",
		}, svc),
		grpcConnOpened: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "grpc", Subsystem: "comm", Name: "conn_opened", Help: "gRPC connections opened. Open minus closed is the active number of connections.",
		}),
		grpcConnClosed: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "grpc", Subsystem: "comm", Name: "conn_closed", Help: "gRPC connections closed. Open minus closed is the active number of connections.",
		}),

		logChecked: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "logging", Name: "entries_checked", Help: "Number of log entries checked against the active logging level",
		}, []string{"level"}),
		logWritten: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "logging", Name: "entries_written", Help: "Number of log entries that are written",
		}, []string{"level"}),

		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "kord", Subsystem: "chain", Name: "records_noted_total", Help: "Consumed records that did not simply join a block, by kind (connect, stale/bad time-to-cut, duplicate, dropped, ...).",
		}, []string{"channel", "kind"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "kord", Subsystem: "chain", Name: "consumer_lag", Help: "Records of the channel's partition not yet processed: the high watermark minus the offset after the last record processed.",
		}, ch),
		reconnects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "kord", Subsystem: "kafka", Name: "reconnects_total", Help: "Times a channel resumed consuming Kafka after having lost it.",
		}, ch),
	}
	versionGauge := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "fabric_version", Help: "The active version of Fabric."}, []string{"version"})
	versionGauge.WithLabelValues(version).Set(1)
	m.reg.MustRegister(
		m.broadcastValidate, m.broadcastEnqueue, m.broadcastProcessed,
		m.deliverOpened, m.deliverClosed, m.deliverReceived, m.deliverCompleted, m.deliverBlocks,
		m.commitTime, m.blockFill, m.lastOffset,
		m.grpcReceived, m.grpcCompleted, m.grpcDuration, m.grpcMsgsIn, m.grpcMsgsOut, m.grpcConnOpened, m.grpcConnClosed,
		m.logChecked, m.logWritten, versionGauge,
		m.events, m.lag, m.reconnects,
		scrapeCollector{m},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// Processed implements broadcast.Metrics.
func (m *metrics) Processed(o broadcast.Outcome) {
	l := []string{o.Channel, o.Type, o.Status.String()}
	m.broadcastValidate.WithLabelValues(l...).Observe(o.Validate.Seconds())
	if o.Enqueue > 0 {
		m.broadcastEnqueue.WithLabelValues(l...).Observe(o.Enqueue.Seconds())
	}
	m.broadcastProcessed.WithLabelValues(l...).Inc()
}

// The deliver service of an orderer serves blocks only: not filtered, data type "block".

// StreamOpened implements deliver.Metrics.
func (m *metrics) StreamOpened() { m.deliverOpened.Inc() }

// StreamClosed implements deliver.Metrics.
func (m *metrics) StreamClosed() { m.deliverClosed.Inc() }

// RequestReceived implements deliver.Metrics.
func (m *metrics) RequestReceived(channel string) {
	m.deliverReceived.WithLabelValues(channel, "false", "block").Inc()
}

// RequestCompleted implements deliver.Metrics.
func (m *metrics) RequestCompleted(channel string, st cb.Status) {
	m.deliverCompleted.WithLabelValues(channel, "false", "block", strconv.FormatBool(st == cb.Status_SUCCESS)).Inc()
}

// BlockSent implements deliver.Metrics.
func (m *metrics) BlockSent(channel string) {
	m.deliverBlocks.WithLabelValues(channel, "false", "block").Inc()
}

// Committed implements chain.Metrics.
func (m *metrics) Committed(channel string, _ []*cb.Block, last *ab.KafkaMetadata, commit time.Duration) {
	m.commitTime.WithLabelValues(channel).Observe(commit.Seconds())
	m.lastOffset.WithLabelValues(channel).Set(float64(last.LastOffsetPersisted))
	m.mu.Lock()
	m.lastBlock[channel] = m.now()
	m.mu.Unlock()
}

// BlockFilled implements chain.Metrics.
func (m *metrics) BlockFilled(channel string, fill time.Duration) {
	m.blockFill.WithLabelValues(channel).Observe(fill.Seconds())
}

// Consumed implements chain.Metrics.
func (m *metrics) Consumed(channel string, offset, highWatermark int64) {
	m.lag.WithLabelValues(channel).Set(float64(max(highWatermark-(offset+1), 0)))
}

// Connected implements chain.Metrics.
func (m *metrics) Connected(channel string, up bool) {
	if !up {
		return
	}
	m.mu.Lock()
	again := m.everUp[channel]
	m.everUp[channel] = true
	m.mu.Unlock()
	if again {
		m.reconnects.WithLabelValues(channel).Inc()
	} else {
		m.reconnects.WithLabelValues(channel).Add(0) // present from the start
	}
}

// setLastBlock records when a channel's tip block was made, unless a block was written since.
func (m *metrics) setLastBlock(channel string, t time.Time, lastOffsetPersisted int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.lastBlock[channel]; ok {
		return
	}
	m.lastBlock[channel] = t
	m.lastOffset.WithLabelValues(channel).Set(float64(lastOffsetPersisted))
}

func (m *metrics) chainEvent(channel string, ev chain.Event) {
	m.events.WithLabelValues(channel, ev.Kind.String()).Inc()
}

// Checked implements logging.Observer.
func (m *metrics) Checked(l slog.Level) { m.logChecked.WithLabelValues(logging.LevelName(l)).Inc() }

// Written implements logging.Observer.
func (m *metrics) Written(l slog.Level) { m.logWritten.WithLabelValues(logging.LevelName(l)).Inc() }

// chainStatus is what the scrape-time collector reads of a channel.
type chainStatus struct {
	channel   string
	height    uint64
	connected bool
}

// scrapeCollector makes the metrics whose value is read when scraped: ledger heights, whether
// chains consume Kafka, time since the last block, and sarama's client metrics mapped as Fabric maps them (one-minute
// rates of meters, means of histograms).
type scrapeCollector struct{ m *metrics }

var (
	heightDesc    = prometheus.NewDesc("ledger_blockchain_height", "Height of the chain in blocks.", []string{"channel"}, nil)
	connectedDesc = prometheus.NewDesc("kord_chain_connected", "1 while the channel consumes its Kafka partition, 0 otherwise.", []string{"channel"}, nil)
	sinceDesc     = prometheus.NewDesc("kord_chain_seconds_since_last_block", "Seconds since the channel's last block was written by this orderer (at start-up: since the tip block was created, from its first transaction's timestamp).", []string{"channel"}, nil)

	// saramaMetrics maps sarama's metric names onto Fabric's gauges.
	saramaMetrics = map[string]*prometheus.Desc{
		"incoming-byte-rate":    kafkaDesc("incoming_byte_rate", "Bytes/second read off brokers.", "broker_id"),
		"outgoing-byte-rate":    kafkaDesc("outgoing_byte_rate", "Bytes/second written to brokers.", "broker_id"),
		"request-rate":          kafkaDesc("request_rate", "Requests/second sent to brokers.", "broker_id"),
		"request-size":          kafkaDesc("request_size", "The mean request size in bytes to brokers.", "broker_id"),
		"request-latency-in-ms": kafkaDesc("request_latency", "The mean request latency in ms to brokers.", "broker_id"),
		"response-rate":         kafkaDesc("response_rate", "Requests/second sent to brokers.", "broker_id"),
		"response-size":         kafkaDesc("response_size", "The mean response size in bytes from brokers.", "broker_id"),
		"batch-size":            kafkaDesc("batch_size", "The mean batch size in bytes sent to topics.", "topic"),
		"record-send-rate":      kafkaDesc("record_send_rate", "The number of records per second sent to topics.", "topic"),
		"records-per-request":   kafkaDesc("records_per_request", "The mean number of records sent per request to topics.", "topic"),
		"compression-ratio":     kafkaDesc("compression_ratio", "The mean compression ratio (as percentage) for topics.", "topic"),
	}
)

func kafkaDesc(name, help, label string) *prometheus.Desc {
	return prometheus.NewDesc("consensus_kafka_"+name, help, []string{label}, nil)
}

func (c scrapeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- heightDesc
	ch <- connectedDesc
	ch <- sinceDesc
	for _, d := range saramaMetrics {
		ch <- d
	}
}

func (c scrapeCollector) Collect(ch chan<- prometheus.Metric) {
	m := c.m
	if m.chains != nil {
		for _, st := range m.chains() {
			up := 0.0
			if st.connected {
				up = 1
			}
			ch <- prometheus.MustNewConstMetric(heightDesc, prometheus.GaugeValue, float64(st.height), st.channel)
			ch <- prometheus.MustNewConstMetric(connectedDesc, prometheus.GaugeValue, up, st.channel)
		}
	}
	m.mu.Lock()
	now := m.now()
	for channel, t := range m.lastBlock {
		ch <- prometheus.MustNewConstMetric(sinceDesc, prometheus.GaugeValue, max(now.Sub(t).Seconds(), 0), channel)
	}
	m.mu.Unlock()
	if m.kafka == nil {
		return
	}
	// The producer's and the consumer's clients each keep their own; rates add up, means are
	// weighted by their counts.
	type acc struct {
		meter       bool
		rate, total float64
		count       int64
	}
	type key struct{ base, id string }
	sums := map[key]*acc{}
	for _, cm := range m.kafka() {
		base, _, id, ok := kafka.SplitMetricName(cm.Name)
		if !ok || saramaMetrics[base] == nil {
			continue
		}
		a := sums[key{base, id}]
		if a == nil {
			a = &acc{meter: cm.Meter}
			sums[key{base, id}] = a
		}
		a.rate += cm.Rate
		a.total += cm.Mean * float64(cm.Count)
		a.count += cm.Count
	}
	for k, a := range sums {
		v := a.rate
		if !a.meter {
			v = 0
			if a.count > 0 {
				v = a.total / float64(a.count)
			}
		}
		ch <- prometheus.MustNewConstMetric(saramaMetrics[k.base], prometheus.GaugeValue, v, k.id)
	}
}

// grpcMetrics are gRPC server interceptors and a stats handler counting, under Fabric's
// names, stream requests and messages (labels service and method as Fabric derives them:
// "orderer_AtomicBroadcast", "Broadcast") and connections.
func (m *metrics) grpcOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ChainStreamInterceptor(m.streamInterceptor),
		grpc.StatsHandler(connCounter{m}),
	}
}

func serviceMethod(full string) (string, string) {
	// "/orderer.AtomicBroadcast/Broadcast" gives "orderer_AtomicBroadcast", "Broadcast".
	parts := strings.Split(strings.ReplaceAll(full, ".", "_"), "/")
	if len(parts) != 3 {
		return "unknown", "unknown"
	}
	return parts[1], parts[2]
}

func (m *metrics) streamInterceptor(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	svc, method := serviceMethod(info.FullMethod)
	m.grpcReceived.WithLabelValues(svc, method).Inc()
	began := time.Now()
	err := handler(srv, &countingStream{ServerStream: ss, in: m.grpcMsgsIn.WithLabelValues(svc, method), out: m.grpcMsgsOut.WithLabelValues(svc, method)})
	code := status.Code(err).String()
	m.grpcDuration.WithLabelValues(svc, method, code).Observe(time.Since(began).Seconds())
	m.grpcCompleted.WithLabelValues(svc, method, code).Inc()
	return err
}

type countingStream struct {
	grpc.ServerStream
	in, out prometheus.Counter
}

func (s *countingStream) SendMsg(msg any) error {
	s.out.Inc()
	return s.ServerStream.SendMsg(msg)
}

func (s *countingStream) RecvMsg(msg any) error {
	err := s.ServerStream.RecvMsg(msg)
	if err == nil {
		s.in.Inc()
	}
	return err
}

// connCounter counts gRPC connections.
type connCounter struct{ m *metrics }

func (c connCounter) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context { return ctx }
func (c connCounter) HandleRPC(context.Context, stats.RPCStats)                       {}
func (c connCounter) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context {
	return ctx
}

func (c connCounter) HandleConn(_ context.Context, s stats.ConnStats) {
	switch s.(type) {
	case *stats.ConnBegin:
		c.m.grpcConnOpened.Inc()
	case *stats.ConnEnd:
		c.m.grpcConnClosed.Inc()
	}
}
