// Package server wires an orderer process together and owns its lifecycle: local identity,
// ledger, registrar and chains, the gRPC listener (Broadcast, Deliver) and the operations
// listener (/healthz, /metrics, /version). Start brings them up in dependency order and Stop
// takes them down in reverse: stop accepting, finish streams, stop chains, close ledgers.
package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/golang/protobuf/proto"
	cb "github.com/hyperledger/fabric-protos-go/common"
	ab "github.com/hyperledger/fabric-protos-go/orderer"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"

	"github.com/kordhq/kord/config"
	"github.com/kordhq/kord/ledger"
	"github.com/kordhq/kord/orderer/broadcast"
	"github.com/kordhq/kord/orderer/deliver"
	"github.com/kordhq/kord/orderer/msp"
	"github.com/kordhq/kord/orderer/registrar"
)

// Version is kord's version, set at build time with -ldflags.
var Version = "0.1.0-dev"

// Server is one orderer process.
type Server struct {
	cfg     *config.TopLevel
	log     *slog.Logger
	signer  *msp.Signer
	ledger  *ledger.Provider
	reg     *registrar.Registrar
	kafka   *kafkaClients
	metrics *metrics

	grpc   *grpc.Server
	lis    net.Listener
	ops    *http.Server
	opsLis net.Listener
	wg     sync.WaitGroup
	// stopping is closed when shutdown begins, to end Deliver streams that wait for blocks.
	stopping chan struct{}
}

// New prepares an orderer from its configuration: it loads the local MSP, opens the ledger
// (bootstrapping it from the genesis block when empty) and reads the system channel. Nothing
// listens yet.
func New(cfg *config.TopLevel, log *slog.Logger) (_ *Server, err error) {
	if log == nil {
		log = slog.Default()
	}
	s := &Server{cfg: cfg, log: log, stopping: make(chan struct{})}
	signer, err := msp.LoadSigner(cfg.General.LocalMSPDir, cfg.General.LocalMSPID)
	if err != nil {
		return nil, fmt.Errorf("General.LocalMSPDir=%q: %w", cfg.General.LocalMSPDir, err)
	}
	s.signer = signer

	var genesis *cb.Block
	method := cfg.General.BootstrapMethod
	if method == "" {
		method = "file"
	}
	s.ledger, err = ledger.NewProvider(cfg.FileLedger.Location)
	if err != nil {
		return nil, fmt.Errorf("FileLedger.Location=%q: %w", cfg.FileLedger.Location, err)
	}
	defer func() {
		if err != nil {
			s.ledger.Close()
		}
	}()
	existing, err := s.ledger.Channels()
	if err != nil {
		return nil, fmt.Errorf("FileLedger.Location=%q: %w", cfg.FileLedger.Location, err)
	}
	if len(existing) == 0 && method == "file" {
		if genesis, err = readBlock(cfg.General.BootstrapFile); err != nil {
			return nil, fmt.Errorf("General.BootstrapFile=%q: %w", cfg.General.BootstrapFile, err)
		}
	}
	s.metrics = newMetrics()
	s.reg, err = registrar.Open(registrar.Options{
		Ledger:   s.ledger,
		Signer:   signer,
		Verifier: msp.NewSignatureVerifier(4096),
		// Fabric's orderer applies the setting to Broadcast and Deliver alike.
		NoExpirationChecks: cfg.General.Authentication.NoExpirationChecks,
		Log:      log,
		OnBlocks: s.metrics.blocksWritten,
		OnEvent:  s.metrics.chainEvent,
	}, genesis)
	if err != nil {
		return nil, err
	}
	sys, err := s.reg.SystemConfig()
	if err != nil {
		return nil, err
	}
	brokers := sys.Brokers
	if len(cfg.Kafka.Brokers) > 0 {
		log.Info("Kafka.Brokers (ORDERER_KAFKA_BROKERS) overrides the brokers of the channel config", "channel_config", sys.Brokers, "override", cfg.Kafka.Brokers)
		brokers = cfg.Kafka.Brokers
	}
	opts, err := kafkaOptions(cfg.Kafka, brokers)
	if err != nil {
		return nil, err
	}
	opts.Logger = log.With("component", "kafka")
	s.kafka = &kafkaClients{opts: opts}
	return s, nil
}

func readBlock(path string) (*cb.Block, error) {
	if path == "" {
		return nil, errors.New("no genesis block file configured (General.BootstrapFile)")
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	b := &cb.Block{}
	if err := proto.Unmarshal(raw, b); err != nil {
		return nil, fmt.Errorf("not a block: %w", err)
	}
	return b, nil
}

// Registrar gives access to the channels (used by the embedded development setup).
func (s *Server) Registrar() *registrar.Registrar { return s.reg }

// Addr is the gRPC listener's address once started.
func (s *Server) Addr() string { return s.lis.Addr().String() }

// OpsAddr is the operations listener's address once started.
func (s *Server) OpsAddr() string { return s.opsLis.Addr().String() }

// Start opens the listeners and starts every chain.
func (s *Server) Start() error {
	g := s.cfg.General
	addr := net.JoinHostPort(g.ListenAddress, strconv.Itoa(int(g.ListenPort)))
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("General.ListenAddress/ListenPort=%s: %w", addr, err)
	}
	opts := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(int(g.MaxRecvMsgSize)),
		grpc.MaxSendMsgSize(int(g.MaxSendMsgSize)),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: g.Keepalive.ServerMinInterval, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: g.Keepalive.ServerInterval, Timeout: g.Keepalive.ServerTimeout}),
	}
	if g.TLS.Enabled {
		tc, err := serverTLS(g.TLS, "General.TLS")
		if err != nil {
			lis.Close()
			return err
		}
		opts = append(opts, grpc.Creds(credentials.NewTLS(tc)))
	}
	s.grpc = grpc.NewServer(opts...)
	ab.RegisterAtomicBroadcastServer(s.grpc, &atomicBroadcast{
		b: &broadcast.Handler{Registrar: s.reg, Log: s.log, Observer: s.metrics},
		d: &deliver.Handler{Registrar: s.reg, Log: s.log, Stopping: s.stopping,
			TimeWindow: g.Authentication.TimeWindow,
			MutualTLS:  g.TLS.Enabled && g.TLS.ClientAuthRequired},
	})
	s.lis = lis

	if s.cfg.Operations.ListenAddress != "" {
		opsLis, err := net.Listen("tcp", s.cfg.Operations.ListenAddress)
		if err != nil {
			lis.Close()
			return fmt.Errorf("Operations.ListenAddress=%s: %w", s.cfg.Operations.ListenAddress, err)
		}
		if s.cfg.Operations.TLS.Enabled {
			tc, err := serverTLS(s.cfg.Operations.TLS, "Operations.TLS")
			if err != nil {
				lis.Close()
				opsLis.Close()
				return err
			}
			opsLis = tls.NewListener(opsLis, tc)
		}
		s.opsLis = opsLis
		mux := http.NewServeMux()
		mux.HandleFunc("/healthz", s.healthz)
		mux.Handle("/metrics", s.metrics.handler(s.cfg.Metrics.Provider))
		mux.HandleFunc("/version", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]string{"Version": Version})
		})
		s.ops = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if err := s.ops.Serve(opsLis); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log.Error("operations server stopped", "err", err)
			}
		}()
	}

	if err := s.reg.Start(&registrar.Kafka{
		Producer:    s.kafka,
		Consume:     s.kafka.consume,
		EnsureTopic: s.kafka.ensureTopic,
		Retry:       s.kafka.opts.Retry,
	}); err != nil {
		return err
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.grpc.Serve(lis); err != nil {
			s.log.Error("gRPC server stopped", "err", err)
		}
	}()
	s.log.Info("orderer started", "version", Version, "listen", s.Addr(), "system_channel", s.reg.SystemChannelID(), "msp", s.signer.MSPID())
	return nil
}

// Stop shuts the orderer down; it is safe to call once after Start.
func (s *Server) Stop() {
	close(s.stopping)
	if s.grpc != nil {
		done := make(chan struct{})
		go func() { s.grpc.GracefulStop(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			s.grpc.Stop() // Deliver streams waiting for new blocks would hold GracefulStop forever
		}
	}
	if s.ops != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = s.ops.Shutdown(ctx)
		cancel()
	}
	s.reg.Stop()
	s.kafka.close()
	s.wg.Wait()
	if err := s.ledger.Close(); err != nil {
		s.log.Warn("closing ledger", "err", err)
	}
}

// healthz answers 200 when every chain consumes its partition, 503 naming those that do not.
func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	type failed struct {
		Component string `json:"component"`
		Reason    string `json:"reason"`
	}
	var checks []failed
	for _, st := range s.reg.Statuses() {
		if !st.Connected {
			reason := "not connected to Kafka"
			if st.Err != nil {
				reason = st.Err.Error()
			}
			checks = append(checks, failed{Component: "kafka/" + st.ChannelID, Reason: reason})
		}
	}
	body := map[string]any{"time": time.Now().UTC()}
	w.Header().Set("Content-Type", "application/json")
	if len(checks) > 0 {
		body["status"] = "Service Unavailable"
		body["failed_checks"] = checks
		w.WriteHeader(http.StatusServiceUnavailable)
	} else {
		body["status"] = "OK"
	}
	_ = json.NewEncoder(w).Encode(body)
}

func serverTLS(t config.TLS, key string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(t.Certificate, t.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("%s.Certificate=%q / PrivateKey=%q: %w", key, t.Certificate, t.PrivateKey, err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if t.ClientAuthRequired {
		pool := x509.NewCertPool()
		for _, f := range t.ClientRootCAs {
			pem, err := os.ReadFile(f)
			if err != nil {
				return nil, fmt.Errorf("%s.ClientRootCAs=%q: %w", key, f, err)
			}
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("%s.ClientRootCAs=%q: no PEM certificate in file", key, f)
			}
		}
		tc.ClientCAs = pool
		tc.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return tc, nil
}

type atomicBroadcast struct {
	b *broadcast.Handler
	d *deliver.Handler
}

func (a *atomicBroadcast) Broadcast(srv ab.AtomicBroadcast_BroadcastServer) error {
	return a.b.Handle(srv)
}
func (a *atomicBroadcast) Deliver(srv ab.AtomicBroadcast_DeliverServer) error { return a.d.Handle(srv) }
