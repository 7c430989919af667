package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/golang/protobuf/proto"
	cb "github.com/hyperledger/fabric-protos-go/common"
	"gopkg.in/yaml.v3"

	"github.com/kordhq/kord/config"
	"github.com/kordhq/kord/kafka/embedded"
	"github.com/kordhq/kord/orderer/client"
	"github.com/kordhq/kord/orderer/genesis"
	"github.com/kordhq/kord/orderer/msp"
	"github.com/kordhq/kord/orderer/msp/mspgen"
	"github.com/kordhq/kord/orderer/server"
)

// devChannel is the application channel the embedded setup creates.
const devChannel = "mychannel"

// dev runs the whole ordering service in one process: an in-process Kafka cluster persisted
// under DIR, a cryptogen-style crypto tree, a system-channel genesis block and the
// application channel mychannel. Re-running on the same DIR resumes everything.
func dev(args []string) int {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	dir := fs.String("dir", ".kord-dev", "directory for crypto material, genesis block, Kafka data and ledger")
	listen := fs.String("listen", "127.0.0.1:7050", "gRPC listen address")
	ops := fs.String("ops", "127.0.0.1:9443", "operations (/healthz, /metrics) listen address")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	lg, ok := newLogging()
	if !ok {
		return 1
	}
	log := lg.Logger("orderer.common.server")
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		log.Error("dev", "err", err)
		return 1
	}
	abs, err := filepath.Abs(*dir)
	if err != nil {
		log.Error("dev", "err", err)
		return 1
	}
	cfg, profile, cluster, err := devSetup(abs, *listen, *ops, log)
	if err != nil {
		log.Error("dev setup", "err", err)
		return 1
	}
	defer cluster.Close()
	return serve(cfg, lg, log, func(ctx context.Context, srv *server.Server) error {
		if !srv.Registrar().HasChannel(devChannel) {
			if err := createDevChannel(ctx, abs, profile, srv.Addr()); err != nil {
				return fmt.Errorf("creating %s: %w", devChannel, err)
			}
		}
		printDevInfo(abs, srv)
		return nil
	})
}

// createDevChannel creates the application channel the way an operator would with `peer
// channel create`: a channel-creation tx signed by Org1's admin, broadcast to this orderer,
// then block 0 fetched back. The orderer is still connecting to Kafka at first, so refusals
// are retried for a while.
func createDevChannel(ctx context.Context, dir string, profile genesis.Profile, addr string) error {
	org := mspgen.DefaultSpec().PeerOrgs[0]
	admin, err := msp.LoadSigner(mspgen.UserMSPDir(mspgen.PeerOrgDir(filepath.Join(dir, "crypto"), org.Domain), org.Domain, mspgen.AdminUser), org.MSPID)
	if err != nil {
		return err
	}
	tx, err := genesis.ChannelCreateTx(profile, devChannel)
	if err != nil {
		return err
	}
	conn, err := client.Dial(ctx, addr, nil)
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for {
		signed, err := client.SignConfigUpdate(tx, admin)
		if err != nil {
			return err
		}
		resp, err := client.Broadcast(ctx, conn, signed)
		if err == nil && resp.Status == cb.Status_SUCCESS {
			break
		}
		if err == nil && resp.Status != cb.Status_SERVICE_UNAVAILABLE {
			return fmt.Errorf("orderer refused the channel creation: %s: %s", resp.Status, resp.Info)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("orderer did not accept the channel creation in time (last answer: %v %v)", resp, err)
		case <-time.After(500 * time.Millisecond):
		}
	}
	_, err = client.WaitBlock(ctx, conn, admin, devChannel, 0, 200*time.Millisecond)
	return err
}

func devSetup(dir, listen, ops string, log *slog.Logger) (_ *config.TopLevel, _ genesis.Profile, _ *embedded.Cluster, err error) {
	var profile genesis.Profile
	cryptoDir := filepath.Join(dir, "crypto")
	spec := mspgen.DefaultSpec()
	if err := mspgen.Generate(cryptoDir, spec); err != nil {
		return nil, profile, nil, fmt.Errorf("generating crypto material: %w", err)
	}
	// The brokers' ports are kept in a file so that a restart listens where the genesis block
	// says the brokers are.
	portsFile := filepath.Join(dir, "kafka.port")
	port := 0
	if b, err := os.ReadFile(portsFile); err == nil {
		port, _ = strconv.Atoi(string(b))
	}
	cluster, err := embedded.Start(context.Background(), embedded.Config{Brokers: 1, Ports: []int{port}, DataDir: filepath.Join(dir, "kafka"), SyncWrites: true})
	if err != nil && port != 0 {
		log.Warn("embedded Kafka could not reuse its port; using a new one", "port", port, "err", err)
		cluster, err = embedded.Start(context.Background(), embedded.Config{Brokers: 1, DataDir: filepath.Join(dir, "kafka"), SyncWrites: true})
	}
	if err != nil {
		return nil, profile, nil, fmt.Errorf("starting embedded Kafka: %w", err)
	}
	defer func() {
		if err != nil {
			cluster.Close()
		}
	}()
	addrs := cluster.Addrs()
	if _, p, err := net.SplitHostPort(addrs[0]); err == nil {
		_ = os.WriteFile(portsFile, []byte(p), 0o644)
	}
	profile = genesis.DevProfile(cryptoDir, spec, addrs, []string{listen})
	profile.BatchTimeout = 500 * time.Millisecond
	profile.MaxMessageCount = 500
	profile.PreferredMaxBytes = 2 * 1024 * 1024
	profile.AbsoluteMaxBytes = 10 * 1024 * 1024
	if raw, err := yaml.Marshal(genesis.SpecOf(profile)); err == nil {
		// Left for kordctl (e.g. `kordctl genesis channel-tx --spec DIR/network.yaml`).
		_ = os.WriteFile(filepath.Join(dir, "network.yaml"), raw, 0o644)
	}
	genesisFile := filepath.Join(dir, "genesis.block")
	if _, err := os.Stat(genesisFile); errors.Is(err, os.ErrNotExist) {
		blk, err := genesis.SystemChannelBlock(profile)
		if err != nil {
			return nil, profile, nil, fmt.Errorf("building genesis block: %w", err)
		}
		raw, err := proto.Marshal(blk)
		if err != nil {
			return nil, profile, nil, err
		}
		if err := os.WriteFile(genesisFile, raw, 0o644); err != nil {
			return nil, profile, nil, err
		}
	}
	cfg, warnings, err := config.LoadYAML(config.DefaultYAML, dir, os.Environ())
	if err != nil {
		return nil, profile, nil, err
	}
	for _, w := range warnings {
		log.Warn("configuration", "warning", w)
	}
	host, portStr, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, profile, nil, fmt.Errorf("--listen %q: %w", listen, err)
	}
	lp, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, profile, nil, fmt.Errorf("--listen %q: bad port", listen)
	}
	ordererOrg := mspgen.OrdererOrgDir(cryptoDir, spec.OrdererOrgs[0].Domain)
	cfg.General.ListenAddress, cfg.General.ListenPort = host, uint16(lp)
	cfg.General.BootstrapMethod, cfg.General.BootstrapFile = "file", genesisFile
	cfg.General.LocalMSPDir = mspgen.OrdererMSPDir(ordererOrg, spec.OrdererOrgs[0].Domain, spec.OrdererOrgs[0].Nodes[0])
	cfg.General.LocalMSPID = spec.OrdererOrgs[0].MSPID
	cfg.FileLedger.Location = filepath.Join(dir, "ledger")
	cfg.Operations.ListenAddress = ops
	cfg.Metrics.Provider = "prometheus"
	cfg.Kafka.Brokers = addrs
	cfg.Kafka.Topic.ReplicationFactor = 1
	cfg.Kafka.Retry.ShortInterval = time.Second
	return cfg, profile, cluster, nil
}

func printDevInfo(dir string, srv *server.Server) {
	user := mspgen.UserMSPDir(mspgen.PeerOrgDir(filepath.Join(dir, "crypto"), "org1.example.com"), "org1.example.com", "User1")
	fmt.Printf(`
kord ordering service (embedded development setup) is running.

  orderer (gRPC, plaintext):  %s
  operations:                 http://%s/healthz  http://%s/metrics
  system channel:             %s     application channel: %s
  crypto material:            %s
  client MSP (Org1MSP User1): %s
  genesis block:              %s

Example (Fabric's peer CLI):
  CORE_PEER_LOCALMSPID=Org1MSP CORE_PEER_MSPCONFIGPATH=%s \
    peer channel fetch newest -o %s -c %s

Stop with Ctrl-C; run again with the same --dir to resume.
`, srv.Addr(), srv.OpsAddr(), srv.OpsAddr(), srv.Registrar().SystemChannelID(), devChannel,
		filepath.Join(dir, "crypto"), user, filepath.Join(dir, "genesis.block"), user, srv.Addr(), devChannel)
}
