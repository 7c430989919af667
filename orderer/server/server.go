// Package server wires an orderer process together and owns its lifecycle: local identity,
// ledger, registrar and chains, the gRPC listener (Broadcast, Deliver; TLS with certificates
// reloaded from disk, keepalive, message size limits) and the operations listener (/healthz,
// /metrics, /logspec, /version; optional TLS with client certificates). Start brings them up
// in dependency order and Stop takes them down in reverse: stop accepting, finish streams,
// stop chains, close ledgers. The metrics of every package are implemented here (metrics.go),
// behind each package's small hook interface.
package server

import (
	"context"
	"crypto/tls"
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
	"github.com/kordhq/kord/orderer/logging"
	"github.com/kordhq/kord/orderer/msp"
	"github.com/kordhq/kord/orderer/registrar"
	"github.com/kordhq/kord/orderer/wire"
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
	logging *logging.Logging // for /logspec; nil when the process did not set one up

	grpcTLS *tlsFiles // nil without General.TLS.Enabled
	opsTLS  *tlsFiles // nil without Operations.TLS.Enabled
	trustMu sync.Mutex

	grpc    *grpc.Server
	lis     net.Listener
	ops     *http.Server
	opsLis  net.Listener
	prof    *http.Server // nil without General.Profile.Enabled
	profLis net.Listener
	wg      sync.WaitGroup
	// stopping is closed when shutdown begins, to end Deliver streams that wait for blocks.
	stopping chan struct{}
}

// Option changes how New builds a server.
type Option func(*Server)

// WithLogging gives the server the process's logging: /logspec reads and changes its spec,
// and its entries are counted in the logging_entries_* metrics.
func WithLogging(l *logging.Logging) Option { return func(s *Server) { s.logging = l } }

// New prepares an orderer from its configuration: it loads the local MSP, opens the ledger
// (bootstrapping it from the genesis block when empty) and reads the system channel. Nothing
// listens yet.
func New(cfg *config.TopLevel, log *slog.Logger, opts ...Option) (_ *Server, err error) {
	if log == nil {
		log = slog.Default()
	}
	s := &Server{cfg: cfg, log: log, stopping: make(chan struct{})}
	for _, o := range opts {
		o(s)
	}
	s.metrics = newMetrics(Version)
	if s.logging != nil {
		s.logging.SetObserver(s.metrics)
	}
	if cfg.Metrics.Provider == "statsd" {
		log.Warn("Metrics.Provider statsd is not supported by kord; metrics are disabled (use prometheus and scrape /metrics)")
	}
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
	s.reg, err = registrar.Open(registrar.Options{
		Ledger:       s.ledger,
		Signer:       signer,
		Verifier:     msp.NewSignatureVerifier(4096),
		Log:          log.With("logger", "orderer.common.multichannel"),
		OnEvent:      s.metrics.chainEvent,
		ChainMetrics: chainHooks{s},
		// Fabric's orderer applies the setting to Broadcast and Deliver alike.
		NoExpirationChecks: cfg.General.Authentication.NoExpirationChecks,
	}, genesis)
	if err != nil {
		return nil, err
	}
	s.metrics.chains = s.chainStatuses
	sys, err := s.reg.SystemConfig()
	if err != nil {
		return nil, err
	}
	brokers := sys.Brokers
	if len(cfg.Kafka.Brokers) > 0 {
		log.Info("Kafka.Brokers (ORDERER_KAFKA_BROKERS) overrides the brokers of the channel config", "channel_config", sys.Brokers, "override", cfg.Kafka.Brokers)
		brokers = cfg.Kafka.Brokers
	}
	kopts, err := kafkaOptions(cfg.Kafka, brokers)
	if err != nil {
		return nil, err
	}
	kopts.Logger = log.With("logger", "orderer.consensus.kafka")
	s.kafka = &kafkaClients{opts: kopts}
	s.metrics.kafka = s.kafka.metrics
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

// Start opens the listeners and starts every chain. A TLS file that is missing or wrong is
// an error naming the setting and the file.
func (s *Server) Start() error {
	g := s.cfg.General
	if g.TLS.Enabled {
		f, err := newTLSFiles("General.TLS", g.TLS, tls.NoClientCert, []string{"h2"}, s.log)
		if err != nil {
			return err
		}
		s.grpcTLS = f
		s.refreshTrust()
	}
	ops := s.cfg.Operations
	if ops.ListenAddress != "" && ops.TLS.Enabled {
		// As Fabric: without ClientAuthRequired a client certificate is still checked when
		// given, and /metrics and /logspec need one.
		f, err := newTLSFiles("Operations.TLS", ops.TLS, tls.VerifyClientCertIfGiven, []string{"http/1.1"}, s.log)
		if err != nil {
			return err
		}
		s.opsTLS = f
	}

	addr := net.JoinHostPort(g.ListenAddress, strconv.Itoa(int(g.ListenPort)))
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("General.ListenAddress/ListenPort=%s: %w", addr, err)
	}
	minInterval := g.Keepalive.ServerMinInterval
	if minInterval <= 0 {
		minInterval = time.Minute // Fabric's default when unset
	}
	opts := []grpc.ServerOption{
		grpc.ForceServerCodecV2(wire.ServerCodec()), // Deliver sends stored blocks as they are, Broadcast keeps what it received
		grpc.MaxRecvMsgSize(int(g.MaxRecvMsgSize)),
		grpc.MaxSendMsgSize(int(g.MaxSendMsgSize)),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: minInterval, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: g.Keepalive.ServerInterval, Timeout: g.Keepalive.ServerTimeout}),
	}
	if g.ConnectionTimeout > 0 {
		opts = append(opts, grpc.ConnectionTimeout(g.ConnectionTimeout))
	}
	if s.grpcTLS != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(s.grpcTLS.config())))
	}
	opts = append(opts, s.metrics.grpcOptions()...)
	s.grpc = grpc.NewServer(opts...)
	ab.RegisterAtomicBroadcastServer(s.grpc, &atomicBroadcast{
		b: &broadcast.Handler{Registrar: s.reg, Log: s.log.With("logger", "orderer.common.broadcast"), Metrics: s.metrics,
			ReceiveRaw: true}, // the codec above hands envelopes their received bytes
		d: &deliver.Handler{Registrar: s.reg, Log: s.log.With("logger", "common.deliver"), Stopping: s.stopping, Metrics: s.metrics,
			TimeWindow: g.Authentication.TimeWindow,
			MutualTLS:  g.TLS.Enabled && g.TLS.ClientAuthRequired},
	})
	s.lis = lis

	if ops.ListenAddress != "" {
		opsLis, err := net.Listen("tcp", ops.ListenAddress)
		if err != nil {
			lis.Close()
			return fmt.Errorf("Operations.ListenAddress=%s: %w", ops.ListenAddress, err)
		}
		if s.opsTLS != nil {
			opsLis = tls.NewListener(opsLis, s.opsTLS.config())
		}
		s.opsLis = opsLis
		s.ops = s.serveHTTP(opsLis, s.opsHandler(), "operations.runner", "operations server")
	}

	if err := s.startProfile(); err != nil {
		lis.Close()
		return err
	}

	for _, st := range s.reg.Statuses() {
		s.noteTip(st.ChannelID)
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
	s.log.Info("orderer started", "version", Version, "listen", s.Addr(), "tls", g.TLS.Enabled, "system_channel", s.reg.SystemChannelID(), "msp", s.signer.MSPID())
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
	if s.prof != nil {
		_ = s.prof.Close() // a running CPU profile or trace is cut short
	}
	s.reg.Stop()
	s.kafka.close()
	s.wg.Wait()
	if err := s.ledger.Close(); err != nil {
		s.log.Warn("closing ledger", "err", err)
	}
}

type atomicBroadcast struct {
	b *broadcast.Handler
	d *deliver.Handler
}

func (a *atomicBroadcast) Broadcast(srv ab.AtomicBroadcast_BroadcastServer) error {
	return a.b.Handle(srv)
}
func (a *atomicBroadcast) Deliver(srv ab.AtomicBroadcast_DeliverServer) error { return a.d.Handle(srv) }
