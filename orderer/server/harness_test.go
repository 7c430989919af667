package server

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang/protobuf/proto"
	cb "github.com/hyperledger/fabric-protos-go/common"
	ab "github.com/hyperledger/fabric-protos-go/orderer"
	"google.golang.org/grpc"

	"github.com/kordhq/kord/config"
	"github.com/kordhq/kord/kafka/embedded"
	"github.com/kordhq/kord/orderer/client"
	"github.com/kordhq/kord/orderer/genesis"
	"github.com/kordhq/kord/orderer/logging"
	"github.com/kordhq/kord/orderer/msp"
	"github.com/kordhq/kord/orderer/msp/mspgen"
)

const testChannel = "mychannel"

// syncBuffer collects log output from many goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testNet is one orderer (in this process) on a kfake cluster (over TCP), with a generated
// crypto tree and genesis block, as an operator would run it.
type testNet struct {
	t         testing.TB
	dir       string
	kcfg      embedded.Config
	cluster   *embedded.Cluster
	cryptoDir string
	spec      mspgen.Spec
	profile   genesis.Profile
	user      *msp.Signer
	cfg       *config.TopLevel
	srv       *Server
	lg        *logging.Logging
	logs      *syncBuffer
}

// newTestNet starts the Kafka cluster described by kcfg (persisted, so that it can be
// restarted) and prepares the orderer's configuration, which tweak may change.
func newTestNet(t testing.TB, kcfg embedded.Config, tweak func(n *testNet)) *testNet {
	t.Helper()
	n := &testNet{t: t, dir: t.TempDir(), logs: &syncBuffer{}}
	n.cryptoDir = filepath.Join(n.dir, "crypto")
	n.kcfg = kcfg
	n.kcfg.DataDir = filepath.Join(n.dir, "kafka")
	n.kcfg.SyncWrites = true
	n.startKafka()
	t.Cleanup(func() { n.cluster.Close() })

	n.spec = mspgen.DefaultSpec()
	if err := mspgen.Generate(n.cryptoDir, n.spec); err != nil {
		t.Fatal(err)
	}
	listen := "127.0.0.1:" + strconv.Itoa(freePort(t))
	n.profile = genesis.DevProfile(n.cryptoDir, n.spec, n.cluster.Addrs(), []string{listen})
	n.profile.BatchTimeout = 100 * time.Millisecond
	n.profile.MaxMessageCount = 5
	blk, err := genesis.SystemChannelBlock(n.profile)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := proto.Marshal(blk)
	if err != nil {
		t.Fatal(err)
	}
	genesisFile := filepath.Join(n.dir, "genesis.block")
	if err := os.WriteFile(genesisFile, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	org1 := n.spec.PeerOrgs[0]
	if n.user, err = msp.LoadSigner(mspgen.UserMSPDir(mspgen.PeerOrgDir(n.cryptoDir, org1.Domain), org1.Domain, "User1"), org1.MSPID); err != nil {
		t.Fatal(err)
	}

	cfg, _, err := config.LoadYAML(config.DefaultYAML, n.dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	ord := n.spec.OrdererOrgs[0]
	host, port, _ := net.SplitHostPort(listen)
	p, _ := strconv.Atoi(port)
	cfg.General.ListenAddress, cfg.General.ListenPort = host, uint16(p)
	cfg.General.BootstrapMethod, cfg.General.BootstrapFile = "file", genesisFile
	cfg.General.LocalMSPDir = mspgen.OrdererMSPDir(mspgen.OrdererOrgDir(n.cryptoDir, ord.Domain), ord.Domain, ord.Nodes[0])
	cfg.General.LocalMSPID = ord.MSPID
	cfg.FileLedger.Location = filepath.Join(n.dir, "ledger")
	cfg.Operations.ListenAddress = "127.0.0.1:" + strconv.Itoa(freePort(t))
	cfg.Metrics.Provider = "prometheus"
	cfg.Kafka.Version = "1.0.0"
	cfg.Kafka.Topic.ReplicationFactor = 1
	cfg.Kafka.Retry.ShortInterval = 200 * time.Millisecond
	cfg.Kafka.Retry.ShortTotal = 5 * time.Minute
	cfg.Kafka.Retry.NetworkTimeouts.DialTimeout = time.Second
	cfg.Kafka.Retry.NetworkTimeouts.ReadTimeout = 3 * time.Second
	cfg.Kafka.Retry.NetworkTimeouts.WriteTimeout = 3 * time.Second
	cfg.Kafka.Retry.Metadata.RetryBackoff = 100 * time.Millisecond
	cfg.Kafka.Retry.Consumer.RetryBackoff = 200 * time.Millisecond
	n.cfg = cfg
	if tweak != nil {
		tweak(n)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("---- orderer log ----\n%s", tail(n.logs.String(), 60))
		}
	})
	return n
}

func tail(s string, lines int) string {
	all := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

func (n *testNet) startKafka() {
	n.t.Helper()
	c, err := embedded.Start(context.Background(), n.kcfg)
	if err != nil {
		n.t.Fatalf("starting kfake: %v", err)
	}
	if len(n.kcfg.Ports) == 0 {
		if n.kcfg.Ports, err = c.Ports(); err != nil {
			n.t.Fatal(err)
		}
	}
	n.cluster = c
}

// restartKafka starts the cluster again on the same ports and data.
func (n *testNet) restartKafka() {
	n.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := embedded.Start(context.Background(), n.kcfg)
		if err == nil {
			n.cluster = c
			return
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("restarting kfake on ports %v: %v", n.kcfg.Ports, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// start runs the orderer; it is stopped at the end of the test.
func (n *testNet) start() {
	n.t.Helper()
	if err := n.startErr(); err != nil {
		n.t.Fatal(err)
	}
}

func (n *testNet) startErr() error {
	lg, err := logging.New(logging.Config{Spec: "info", Writer: n.logs})
	if err != nil {
		return err
	}
	n.lg = lg
	srv, err := New(n.cfg, lg.Logger("orderer.common.server"), WithLogging(lg))
	if err != nil {
		return err
	}
	if err := srv.Start(); err != nil {
		srv.Stop()
		return err
	}
	n.srv = srv
	n.t.Cleanup(srv.Stop)
	return nil
}

// createChannel creates an application channel as `peer channel create` does (a creation
// tx signed by Org1's admin, over gRPC) and waits until its chain consumes Kafka.
func (n *testNet) createChannel(ctx context.Context, id string) {
	n.t.Helper()
	org1 := n.spec.PeerOrgs[0]
	admin, err := msp.LoadSigner(mspgen.UserMSPDir(mspgen.PeerOrgDir(n.cryptoDir, org1.Domain), org1.Domain, mspgen.AdminUser), org1.MSPID)
	if err != nil {
		n.t.Fatal(err)
	}
	tx, err := genesis.ChannelCreateTx(n.profile, id)
	if err != nil {
		n.t.Fatal(err)
	}
	conn, err := client.Dial(ctx, n.srv.Addr(), nil)
	if err != nil {
		n.t.Fatal(err)
	}
	defer conn.Close()
	for {
		signed, err := client.SignConfigUpdate(tx, admin)
		if err != nil {
			n.t.Fatal(err)
		}
		resp, err := client.Broadcast(ctx, conn, signed)
		if err == nil && resp.Status == cb.Status_SUCCESS {
			break
		}
		select {
		case <-ctx.Done():
			n.t.Fatalf("creating %s: %v %v", id, resp, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
	if _, err := client.WaitBlock(ctx, conn, admin, id, 0, 50*time.Millisecond); err != nil {
		n.t.Fatal(err)
	}
	n.waitHealthz(ctx, http.StatusOK)
}

func (n *testNet) opsURL(path string) string {
	scheme := "http"
	if n.cfg.Operations.TLS.Enabled {
		scheme = "https"
	}
	return scheme + "://" + n.srv.OpsAddr() + path
}

func (n *testNet) healthz() (int, healthStatus) {
	var hs healthStatus
	resp, err := http.Get(n.opsURL("/healthz"))
	if err != nil {
		return 0, hs
	}
	defer resp.Body.Close()
	_ = json.NewDecoder(resp.Body).Decode(&hs)
	return resp.StatusCode, hs
}

// waitHealthz polls /healthz until it answers code; it returns the last body.
func (n *testNet) waitHealthz(ctx context.Context, code int) healthStatus {
	n.t.Helper()
	for {
		got, hs := n.healthz()
		if got == code {
			return hs
		}
		select {
		case <-ctx.Done():
			n.t.Fatalf("/healthz did not answer %d in time; last %d %+v", code, got, hs)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (n *testNet) dial(tc *tls.Config) *grpc.ClientConn {
	n.t.Helper()
	conn, err := client.Dial(context.Background(), n.srv.Addr(), tc)
	if err != nil {
		n.t.Fatal(err)
	}
	n.t.Cleanup(func() { conn.Close() })
	return conn
}

// broadcastN sends count envelopes on one stream and returns how many were acknowledged.
func broadcastN(ctx context.Context, conn *grpc.ClientConn, s client.Signer, channel string, count int) (int, error) {
	stream, err := ab.NewAtomicBroadcastClient(conn).Broadcast(ctx)
	if err != nil {
		return 0, err
	}
	errc := make(chan error, 1)
	go func() {
		for i := range count {
			env, err := client.Envelope(s, cb.HeaderType_ENDORSER_TRANSACTION, channel, []byte(fmt.Sprintf("tx %d %d", i, time.Now().UnixNano())))
			if err == nil {
				err = stream.Send(env)
			}
			if err != nil {
				errc <- err
				return
			}
		}
		errc <- stream.CloseSend()
	}()
	acked := 0
	for range count {
		resp, err := stream.Recv()
		if err != nil {
			return acked, err
		}
		if resp.Status != cb.Status_SUCCESS {
			return acked, fmt.Errorf("broadcast refused: %s %s", resp.Status, resp.Info)
		}
		acked++
	}
	return acked, <-errc
}

// deliverUpTo fetches blocks 0..last of channel, waiting for those not written yet, and
// returns how many came.
func deliverUpTo(ctx context.Context, conn *grpc.ClientConn, s client.Signer, channel string, last uint64) (int, error) {
	req, err := client.SeekEnvelope(s, channel, client.Oldest(), client.Specified(last), ab.SeekInfo_BLOCK_UNTIL_READY)
	if err != nil {
		return 0, err
	}
	count := 0
	st, err := client.Deliver(ctx, conn, req, func(*cb.Block) error { count++; return nil })
	if err != nil {
		return count, err
	}
	if st != cb.Status_SUCCESS {
		return count, fmt.Errorf("deliver ended with %s", st)
	}
	return count, nil
}

// scrape reads /metrics into series name{labels} → value.
func scrape(t *testing.T, hc *http.Client, url string) map[string]float64 {
	t.Helper()
	resp, err := hc.Get(url)
	if err != nil {
		t.Fatalf("scraping %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("scraping %s: %d %s", url, resp.StatusCode, b)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			t.Fatalf("bad exposition line %q", line)
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("bad value in %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// family sums the series of one metric family (for a histogram, its _count).
func family(series map[string]float64, name string) (sum float64, found bool) {
	for k, v := range series {
		base := k
		if i := strings.IndexByte(k, '{'); i >= 0 {
			base = k[:i]
		}
		if base == name || base == name+"_count" {
			sum += v
			found = true
		}
	}
	return sum, found
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func testCtx(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
