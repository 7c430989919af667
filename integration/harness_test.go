package integration

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
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
	"github.com/kordhq/kord/orderer/msp"
	"github.com/kordhq/kord/orderer/msp/mspgen"
)

// Batch parameters of the test network: small, so that the tests cut many blocks and can
// exercise the size rules.
const (
	batchTimeout      = 200 * time.Millisecond
	maxMessageCount   = 10
	preferredMaxBytes = 64 * 1024
	absoluteMaxBytes  = 1024 * 1024

	appChannel = "mychannel"

	readyTimeout = 30 * time.Second
	stopTimeout  = 20 * time.Second
)

// ordererBin and kordctlBin are the orderer daemon and the operator tool, built once by
// TestMain.
var ordererBin, kordctlBin string

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "kord-integration-bin-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "integration: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir)
	goBin, err := exec.LookPath("go")
	if err != nil {
		fmt.Fprintf(os.Stderr, "integration: the go command is needed to build cmd/orderer: %v\n", err)
		return 1
	}
	start := time.Now()
	for _, c := range []struct {
		pkg  string
		dest *string
	}{{"cmd/orderer", &ordererBin}, {"cmd/kordctl", &kordctlBin}} {
		bin := filepath.Join(dir, filepath.Base(c.pkg))
		args := []string{"build", "-o", bin}
		if os.Getenv("KORD_INTEGRATION_RACE") != "" {
			args = append(args, "-race")
		}
		args = append(args, "github.com/kordhq/kord/"+c.pkg)
		out, err := exec.Command(goBin, args...).CombinedOutput()
		if err != nil {
			fmt.Fprintf(os.Stderr, "integration: building %s failed: %v\n%s\n", c.pkg, err, out)
			return 1
		}
		*c.dest = bin
	}
	fmt.Fprintf(os.Stderr, "integration: built cmd/orderer and cmd/kordctl in %v\n", time.Since(start).Round(time.Millisecond))
	return m.Run()
}

// network is one test's ordering service: a Kafka cluster (by default a 3-broker kfake
// cluster in this process), a crypto tree, a system-channel genesis block, and orderer
// processes.
type network struct {
	t          *testing.T
	dir        string
	cluster    *embedded.Cluster // nil on an external cluster
	brokers    []string
	cryptoDir  string
	spec       mspgen.Spec
	profile    genesis.Profile
	genesisRaw []byte
	user       *msp.Signer
	userMSPDir string // user's local MSP, for kordctl
	userMSPID  string
	orderers   []*orderer
}

// orderer is one orderer process, restartable on the same directory and ports.
type orderer struct {
	t       *testing.T
	name    string
	dir     string
	mspDir  string
	port    int
	opsPort int
	env     []string
	logPath string
	id      []byte // serialized identity that signs this orderer's blocks

	mu       sync.Mutex
	cmd      *exec.Cmd
	done     chan struct{}
	exitErr  error
	logFile  *os.File
	logStart int64 // offset in logPath where the current run's output begins
}

// netConfig varies a network.
type netConfig struct {
	// brokers are the addresses of an external Kafka cluster (written into the channel
	// config); nil starts a 3-broker kfake cluster.
	brokers []string
	// ordererBrokers, if set, gives orderer i its own ORDERER_KAFKA_BROKERS (e.g. a proxy).
	ordererBrokers func(i int) []string
	// absoluteMaxBytes replaces the channels' AbsoluteMaxBytes.
	absoluteMaxBytes uint32
	// env is added to every orderer's environment; ordererEnv(i), if set, to orderer i's.
	env        []string
	ordererEnv func(i int) []string
}

// newNetwork sets up n orderers (not started) and a kfake cluster.
func newNetwork(t *testing.T, n int) *network { return newNetworkWith(t, n, netConfig{}) }

// newNetworkWith sets up n orderers (not started) as nc says.
func newNetworkWith(t *testing.T, n int, nc netConfig) *network {
	t.Helper()
	dir := t.TempDir()
	nw := &network{t: t, dir: dir, cryptoDir: filepath.Join(dir, "crypto"), brokers: nc.brokers}

	if nw.brokers == nil {
		cluster, err := embedded.Start(context.Background(), embedded.Config{Brokers: 3})
		if err != nil {
			t.Fatalf("starting kfake cluster: %v", err)
		}
		nw.cluster = cluster
		nw.brokers = cluster.Addrs()
		// Registered before the orderers' clean-ups, so it runs after them (LIFO).
		t.Cleanup(cluster.Close)
	}

	spec := mspgen.DefaultSpec()
	nodes := make([]string, n)
	for i := range nodes {
		nodes[i] = fmt.Sprintf("orderer%d", i)
	}
	spec.OrdererOrgs[0].Nodes = nodes
	nw.spec = spec
	if err := mspgen.Generate(nw.cryptoDir, spec); err != nil {
		t.Fatalf("generating crypto material: %v", err)
	}
	ordOrg := spec.OrdererOrgs[0]
	ordOrgDir := mspgen.OrdererOrgDir(nw.cryptoDir, ordOrg.Domain)

	endpoints := make([]string, n)
	for i := range n {
		o := &orderer{
			t:       t,
			name:    nodes[i],
			dir:     filepath.Join(dir, nodes[i]),
			mspDir:  mspgen.OrdererMSPDir(ordOrgDir, ordOrg.Domain, nodes[i]),
			port:    freePort(t),
			opsPort: freePort(t),
		}
		o.logPath = filepath.Join(o.dir, "orderer.log")
		s, err := msp.LoadSigner(o.mspDir, ordOrg.MSPID)
		if err != nil {
			t.Fatalf("loading %s's MSP: %v", o.name, err)
		}
		o.id = s.Serialize()
		endpoints[i] = o.addr()
		nw.orderers = append(nw.orderers, o)
	}

	p := genesis.DevProfile(nw.cryptoDir, spec, nw.brokers, endpoints)
	p.BatchTimeout = batchTimeout
	p.MaxMessageCount = maxMessageCount
	p.PreferredMaxBytes = preferredMaxBytes
	p.AbsoluteMaxBytes = absoluteMaxBytes
	if nc.absoluteMaxBytes != 0 {
		p.AbsoluteMaxBytes = nc.absoluteMaxBytes
	}
	nw.profile = p
	blk, err := genesis.SystemChannelBlock(p)
	if err != nil {
		t.Fatalf("building the system channel genesis block: %v", err)
	}
	if nw.genesisRaw, err = proto.Marshal(blk); err != nil {
		t.Fatal(err)
	}
	genesisFile := filepath.Join(dir, "genesis.block")
	if err := os.WriteFile(genesisFile, nw.genesisRaw, 0o644); err != nil {
		t.Fatal(err)
	}

	peerOrg := spec.PeerOrgs[0]
	nw.userMSPDir, nw.userMSPID = mspgen.UserMSPDir(mspgen.PeerOrgDir(nw.cryptoDir, peerOrg.Domain), peerOrg.Domain, "User1"), peerOrg.MSPID
	nw.user, err = msp.LoadSigner(nw.userMSPDir, nw.userMSPID)
	if err != nil {
		t.Fatalf("loading the client identity: %v", err)
	}

	for i, o := range nw.orderers {
		if err := os.MkdirAll(o.dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(o.dir, "orderer.yaml"), config.DefaultYAML, 0o644); err != nil {
			t.Fatal(err)
		}
		o.env = append(cleanEnviron(),
			"FABRIC_CFG_PATH="+o.dir,
			"FABRIC_LOGGING_SPEC=info",
			"ORDERER_GENERAL_LISTENADDRESS=127.0.0.1",
			"ORDERER_GENERAL_LISTENPORT="+strconv.Itoa(o.port),
			"ORDERER_GENERAL_BOOTSTRAPMETHOD=file",
			"ORDERER_GENERAL_BOOTSTRAPFILE="+genesisFile,
			"ORDERER_GENERAL_LOCALMSPDIR="+o.mspDir,
			"ORDERER_GENERAL_LOCALMSPID="+ordOrg.MSPID,
			"ORDERER_FILELEDGER_LOCATION="+filepath.Join(o.dir, "ledger"),
			"ORDERER_OPERATIONS_LISTENADDRESS="+o.opsAddr(),
			"ORDERER_METRICS_PROVIDER=prometheus",
			"ORDERER_KAFKA_VERSION=1.0.0",
			"ORDERER_KAFKA_TOPIC_REPLICATIONFACTOR=3",
			"ORDERER_KAFKA_RETRY_SHORTINTERVAL=1s",
		)
		if nc.ordererBrokers != nil && len(nc.ordererBrokers(i)) > 0 {
			o.env = append(o.env, "ORDERER_KAFKA_BROKERS=["+strings.Join(nc.ordererBrokers(i), ",")+"]")
		}
		o.env = append(o.env, nc.env...)
		if nc.ordererEnv != nil {
			o.env = append(o.env, nc.ordererEnv(i)...)
		}
		// Kill every process at the end, also when the test failed or panicked half-way.
		t.Cleanup(func() { o.kill() })
	}
	// Runs before the kills above (LIFO): show what the orderers said. An orderer built with
	// -race (KORD_INTEGRATION_RACE=1) reports data races in its log.
	t.Cleanup(func() {
		for _, o := range nw.orderers {
			if b, err := os.ReadFile(o.logPath); err == nil && bytes.Contains(b, []byte("WARNING: DATA RACE")) {
				t.Errorf("%s reported a data race (see its log below)", o.name)
			}
		}
		if t.Failed() {
			for _, o := range nw.orderers {
				t.Logf("---- tail of %s's log (%s) ----\n%s", o.name, o.logPath, tailFile(o.logPath, 80))
			}
		}
	})
	return nw
}

// cleanEnviron is this process's environment without the variables that configure an
// orderer, so that nothing from the developer's shell leaks into the processes under test.
func cleanEnviron() []string {
	var out []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "ORDERER_") || strings.HasPrefix(kv, "FABRIC_") || strings.HasPrefix(kv, "CORE_") {
			continue
		}
		out = append(out, kv)
	}
	return out
}

var (
	portsMu sync.Mutex
	ports   = map[int]bool{} // handed out in this run
)

// freePort returns a port that is free on 127.0.0.1. It is taken below the kernel's range of
// ephemeral ports when it can: an orderer is restarted on the same ports, and a port from
// that range could meanwhile be taken by some outgoing connection (a Kafka client's, say).
func freePort(t *testing.T) int {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	low := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil {
				low = n
			}
		}
	}
	if low > 12000 {
		for range 200 {
			p := 10000 + rand.IntN(low-10000)
			if ports[p] {
				continue
			}
			l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
			if err != nil {
				continue
			}
			l.Close()
			ports[p] = true
			return p
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	defer l.Close()
	p := l.Addr().(*net.TCPAddr).Port
	ports[p] = true
	return p
}

func tailFile(path string, lines int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read: %v)", err)
	}
	var all []string
	for _, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		// One line per refused envelope under load would hide everything else.
		if !strings.Contains(l, `msg="broadcast refused"`) {
			all = append(all, l)
		}
	}
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

// startAll starts every orderer and waits until each is healthy.
func (nw *network) startAll() {
	nw.t.Helper()
	for _, o := range nw.orderers {
		o.start()
	}
	for _, o := range nw.orderers {
		o.waitReady()
	}
}

// createChannel creates an application channel the way `peer channel create` does: a
// channel-creation tx signed by Org1's admin, broadcast to orderer0. Every orderer consumes
// the resulting ORDERER_TRANSACTION and creates the channel; this waits until each serves
// block 0 of the channel and is healthy again (the new chain connected).
func (nw *network) createChannel(channelID string) {
	t := nw.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	resp := nw.broadcastCreation(ctx, nw.orderers[0], channelID, nw.profile, nw.admin(0))
	// A system channel still connecting to Kafka answers SERVICE_UNAVAILABLE, and peer CLI
	// users try again; so does this.
	for resp.Status == cb.Status_SERVICE_UNAVAILABLE && ctx.Err() == nil {
		time.Sleep(200 * time.Millisecond)
		resp = nw.broadcastCreation(ctx, nw.orderers[0], channelID, nw.profile, nw.admin(0))
	}
	if resp.Status != cb.Status_SUCCESS {
		t.Fatalf("creating %s: %s: %s", channelID, resp.Status, resp.Info)
	}
	for _, o := range nw.orderers {
		o.waitBlock(ctx, nw.user, channelID, 0)
		o.waitReady()
	}
}

// broadcastCreation sends the channel-creation tx of profile for channelID, signed by
// signers, to o, and returns the answer.
func (nw *network) broadcastCreation(ctx context.Context, o *orderer, channelID string, profile genesis.Profile, signers ...client.Signer) *ab.BroadcastResponse {
	t := nw.t
	t.Helper()
	tx, err := genesis.ChannelCreateTx(profile, channelID)
	if err != nil {
		t.Fatalf("channel-creation tx for %s: %v", channelID, err)
	}
	return nw.broadcastConfig(ctx, o, tx, signers...)
}

// broadcastConfig signs a CONFIG_UPDATE envelope with signers and sends it to o.
func (nw *network) broadcastConfig(ctx context.Context, o *orderer, tx *cb.Envelope, signers ...client.Signer) *ab.BroadcastResponse {
	t := nw.t
	t.Helper()
	signed, err := client.SignConfigUpdate(tx, signers...)
	if err != nil {
		t.Fatal(err)
	}
	conn := o.dial()
	defer conn.Close()
	resp, err := client.Broadcast(ctx, conn, signed)
	if err != nil {
		t.Fatalf("broadcasting a config update to %s: %v", o.name, err)
	}
	return resp
}

// admin is the admin of peer organization i (0: Org1).
func (nw *network) admin(i int) *msp.Signer {
	nw.t.Helper()
	org := nw.spec.PeerOrgs[i]
	s, err := msp.LoadSigner(mspgen.UserMSPDir(mspgen.PeerOrgDir(nw.cryptoDir, org.Domain), org.Domain, mspgen.AdminUser), org.MSPID)
	if err != nil {
		nw.t.Fatal(err)
	}
	return s
}

// ordererAdmin is the admin of the orderer organization.
func (nw *network) ordererAdmin() *msp.Signer {
	nw.t.Helper()
	org := nw.spec.OrdererOrgs[0]
	s, err := msp.LoadSigner(mspgen.UserMSPDir(mspgen.OrdererOrgDir(nw.cryptoDir, org.Domain), org.Domain, mspgen.AdminUser), org.MSPID)
	if err != nil {
		nw.t.Fatal(err)
	}
	return s
}

func (o *orderer) addr() string    { return net.JoinHostPort("127.0.0.1", strconv.Itoa(o.port)) }
func (o *orderer) opsAddr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(o.opsPort)) }

// start launches the process (again, after stop or kill) on the same directory and ports.
func (o *orderer) start() {
	o.t.Helper()
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.cmd != nil {
		o.t.Fatalf("%s is already running", o.name)
	}
	f, err := os.OpenFile(o.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		o.t.Fatal(err)
	}
	off, _ := f.Seek(0, io.SeekEnd)
	fmt.Fprintf(f, "==== %s: starting %s ====\n", time.Now().Format(time.RFC3339Nano), o.name)
	cmd := exec.Command(ordererBin, "start")
	cmd.Dir = o.dir
	cmd.Env = o.env
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		o.t.Fatalf("starting %s: %v", o.name, err)
	}
	done := make(chan struct{})
	o.cmd, o.done, o.exitErr, o.logFile, o.logStart = cmd, done, nil, f, off
	go func() {
		err := cmd.Wait()
		o.mu.Lock()
		o.exitErr = err
		o.mu.Unlock()
		close(done)
	}()
}

// running reports whether the current process is still alive.
func (o *orderer) running() bool {
	o.mu.Lock()
	done := o.done
	o.mu.Unlock()
	if done == nil {
		return false
	}
	select {
	case <-done:
		return false
	default:
		return true
	}
}

// signal sends sig and waits for the process to end; it reports whether it ended in time,
// and its exit error.
func (o *orderer) signal(sig syscall.Signal, wait time.Duration) (bool, error) {
	o.mu.Lock()
	cmd, done := o.cmd, o.done
	o.mu.Unlock()
	if cmd == nil {
		return true, nil
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(wait):
		return false, nil
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	err := o.exitErr
	o.cmd, o.done = nil, nil
	if o.logFile != nil {
		o.logFile.Close()
		o.logFile = nil
	}
	return true, err
}

// stop ends the process gracefully (SIGTERM) and requires a clean exit.
func (o *orderer) stop() {
	o.t.Helper()
	ok, err := o.signal(syscall.SIGTERM, stopTimeout)
	if !ok {
		o.kill()
		o.t.Fatalf("%s did not stop within %v of SIGTERM", o.name, stopTimeout)
	}
	if err != nil {
		o.t.Fatalf("%s exited with %v after SIGTERM", o.name, err)
	}
}

// kill ends the process with SIGKILL (no clean-up in the orderer).
func (o *orderer) kill() {
	if ok, _ := o.signal(syscall.SIGKILL, 10*time.Second); !ok {
		o.t.Errorf("%s did not die within 10s of SIGKILL", o.name)
	}
}

// waitReady polls /healthz until it answers 200.
func (o *orderer) waitReady() {
	o.t.Helper()
	deadline := time.Now().Add(readyTimeout)
	hc := &http.Client{Timeout: 2 * time.Second}
	var last string
	for {
		if !o.running() {
			o.t.Fatalf("%s exited while waiting for it to become healthy (last /healthz: %s)", o.name, last)
		}
		resp, err := hc.Get("http://" + o.opsAddr() + "/healthz")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, bytes.TrimSpace(body))
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			o.t.Fatalf("%s not healthy within %v; last /healthz: %s", o.name, readyTimeout, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// logSinceStart is what the current (or last) run of the process wrote.
func (o *orderer) logSinceStart() string {
	o.mu.Lock()
	off := o.logStart
	o.mu.Unlock()
	b, err := os.ReadFile(o.logPath)
	if err != nil || int64(len(b)) < off {
		return ""
	}
	return string(b[off:])
}

// dial opens a fresh gRPC connection (fresh, so that a restarted orderer is not hidden behind
// the reconnect back-off of an old connection).
func (o *orderer) dial() *grpc.ClientConn {
	o.t.Helper()
	conn, err := client.Dial(context.Background(), o.addr(), nil)
	if err != nil {
		o.t.Fatal(err)
	}
	return conn
}

// waitBlock polls Deliver until block n of channelID is served.
func (o *orderer) waitBlock(ctx context.Context, s client.Signer, channelID string, n uint64) {
	o.t.Helper()
	conn := o.dial()
	defer conn.Close()
	var last string
	for {
		st, blks, err := deliverRange(ctx, conn, s, channelID, client.Specified(n), client.Specified(n), ab.SeekInfo_FAIL_IF_NOT_READY)
		if err == nil && st == cb.Status_SUCCESS && len(blks) == 1 {
			return
		}
		last = fmt.Sprintf("status %v, %d blocks, err %v", st, len(blks), err)
		select {
		case <-ctx.Done():
			o.t.Fatalf("%s: block %d of %s not delivered in time (last: %s)", o.name, n, channelID, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
