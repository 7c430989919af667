package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/golang/protobuf/proto"
	cb "github.com/hyperledger/fabric-protos-go/common"
	ab "github.com/hyperledger/fabric-protos-go/orderer"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/kordhq/kord/kafka"
	"github.com/kordhq/kord/orderer/blocks"
	"github.com/kordhq/kord/orderer/chain"
)

// opsHandler serves the operations endpoints as Fabric's operations service does: /healthz
// and /version to anyone; /metrics and /logspec, when Operations.TLS is enabled, only to
// clients that presented a certificate the server verified (401 otherwise).
func (s *Server) opsHandler() http.Handler {
	secure := s.opsTLS != nil
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", s.healthz)
	mux.HandleFunc("/version", s.version)
	if s.cfg.Metrics.Provider == "prometheus" {
		mux.Handle("/metrics", s.requireCert(secure, promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{})))
	}
	if s.logging != nil {
		mux.Handle("/logspec", s.requireCert(secure, http.HandlerFunc(s.logspec)))
	}
	return mux
}

func (s *Server) requireCert(secure bool, next http.Handler) http.Handler {
	if !secure {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.VerifiedChains[0]) == 0 {
			s.log.Warn("operations request refused: a client certificate signed by Operations.TLS.ClientRootCAs is required", "url", r.URL.String(), "remote", r.RemoteAddr)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// healthStatus is Fabric's /healthz body.
type healthStatus struct {
	Status       string        `json:"status"`
	Time         time.Time     `json:"time"`
	FailedChecks []failedCheck `json:"failed_checks,omitempty"`
}

type failedCheck struct {
	Component string `json:"component"`
	Reason    string `json:"reason"`
}

// healthz answers 200 when every chain consumes its partition, 503 naming those that do not
// (component "kafka/<channel>") with the reason: the last failed attempt or consumer error.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	hs := healthStatus{Status: "OK", Time: time.Now()}
	for _, st := range s.reg.Statuses() {
		if st.Connected {
			continue
		}
		reason := "not connected to Kafka yet"
		if st.Err != nil {
			reason = st.Err.Error()
		}
		hs.FailedChecks = append(hs.FailedChecks, failedCheck{Component: "kafka/" + st.ChannelID, Reason: reason})
	}
	code := http.StatusOK
	if len(hs.FailedChecks) > 0 {
		hs.Status, code = "Service Unavailable", http.StatusServiceUnavailable
	}
	writeJSON(w, code, hs)
}

// version answers as Fabric's /version: {"CommitSHA": ..., "Version": ...}.
func (s *Server) version(w http.ResponseWriter, _ *http.Request) {
	sha := ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, kv := range bi.Settings {
			if kv.Key == "vcs.revision" {
				sha = kv.Value
				if len(sha) > 7 {
					sha = sha[:7]
				}
			}
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"CommitSHA": sha, "Version": Version})
}

// logspec reads (GET) and changes (PUT {"spec": "..."}) the logging spec, as Fabric's.
func (s *Server) logspec(w http.ResponseWriter, r *http.Request) {
	type spec struct {
		Spec string `json:"spec"`
	}
	type failure struct {
		Error string `json:"error"`
	}
	switch r.Method {
	case http.MethodGet:
		writeJSON(w, http.StatusOK, spec{Spec: s.logging.Spec()})
	case http.MethodPut:
		var req spec
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&req); err != nil {
			writeJSON(w, http.StatusBadRequest, failure{Error: fmt.Sprintf("body must be {\"spec\": \"...\"}: %v", err)})
			return
		}
		if err := s.logging.ActivateSpec(req.Spec); err != nil {
			writeJSON(w, http.StatusBadRequest, failure{Error: err.Error()})
			return
		}
		s.log.Info("logging spec changed", "spec", s.logging.Spec(), "remote", r.RemoteAddr)
		w.WriteHeader(http.StatusNoContent)
	default:
		writeJSON(w, http.StatusBadRequest, failure{Error: "invalid request method: " + r.Method})
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// chainStatuses are the ledger heights and Kafka states of every channel, for
// ledger_blockchain_height and kord_chain_connected.
func (s *Server) chainStatuses() []chainStatus {
	sts := s.reg.Statuses()
	out := make([]chainStatus, len(sts))
	for i, st := range sts {
		out[i] = chainStatus{channel: st.ChannelID, height: st.Height, connected: st.Connected}
	}
	return out
}

// noteTip gives a channel's time-since-last-block and last-offset metrics their start-up
// values, from its tip block: the time its first transaction was created, and its Kafka
// metadata. Blocks written afterwards replace them.
func (s *Server) noteTip(channel string) {
	store, err := s.ledger.Open(channel)
	if err != nil {
		return
	}
	b, err := store.LastBlock()
	if err != nil || b == nil {
		return
	}
	t := blockTime(b)
	if t.IsZero() {
		t = time.Now()
	}
	off := int64(-1)
	if km, err := blocks.KafkaMetadata(b); err == nil && km != nil {
		off = km.LastOffsetPersisted
	}
	s.metrics.setLastBlock(channel, t, off)
}

// blockTime is the timestamp in the channel header of a block's first envelope.
func blockTime(b *cb.Block) time.Time {
	data := b.GetData().GetData()
	if len(data) == 0 {
		return time.Time{}
	}
	env := &cb.Envelope{}
	payload := &cb.Payload{}
	chdr := &cb.ChannelHeader{}
	if proto.Unmarshal(data[0], env) != nil || proto.Unmarshal(env.Payload, payload) != nil ||
		payload.Header == nil || proto.Unmarshal(payload.Header.ChannelHeader, chdr) != nil || chdr.Timestamp == nil {
		return time.Time{}
	}
	return chdr.Timestamp.AsTime()
}

// refreshTrust adds the TLS CAs of every channel's MSPs to the client CAs of the gRPC
// listener when it requires client certificates, as Fabric's orderer does.
func (s *Server) refreshTrust() {
	if s.grpcTLS == nil || !s.cfg.General.TLS.ClientAuthRequired {
		return
	}
	s.trustMu.Lock()
	defer s.trustMu.Unlock()
	var roots [][]byte
	for _, st := range s.reg.Statuses() {
		store, err := s.ledger.Open(st.ChannelID)
		if err != nil {
			continue
		}
		state, err := chain.LoadState(st.ChannelID, store)
		if err != nil || state.Config == nil {
			continue
		}
		roots = append(roots, mspTLSRoots(state.Config.Config)...)
	}
	s.grpcTLS.setExtraCAs(roots)
}

// chainHooks implements chain.Metrics: the metrics, plus what the server itself follows.
type chainHooks struct{ s *Server }

func (h chainHooks) Committed(channel string, written []*cb.Block, last *ab.KafkaMetadata, commit time.Duration) {
	h.s.metrics.Committed(channel, written, last, commit)
	for _, b := range written {
		if idx, err := blocks.LastConfigIndex(b); err == nil && idx == b.Header.Number {
			h.s.refreshTrust() // a config block: the channel's MSPs may have changed
			break
		}
	}
}

func (h chainHooks) BlockFilled(channel string, fill time.Duration) {
	h.s.metrics.BlockFilled(channel, fill)
}

func (h chainHooks) Consumed(channel string, offset, highWatermark int64) {
	h.s.metrics.Consumed(channel, offset, highWatermark)
}

func (h chainHooks) Connected(channel string, up bool) {
	h.s.metrics.Connected(channel, up)
	if up {
		h.s.noteTip(channel) // a channel created since start-up
		h.s.refreshTrust()
	}
}

// metrics returns sarama's metrics of the process's producer and consumer.
func (k *kafkaClients) metrics() []kafka.ClientMetric {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []kafka.ClientMetric
	if k.producer != nil {
		out = append(out, k.producer.Metrics()...)
	}
	for c := range k.consumers {
		out = append(out, c.Metrics()...)
	}
	return out
}
