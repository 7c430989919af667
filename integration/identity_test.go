package integration

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang/protobuf/proto"
	fconfigtx "github.com/hyperledger/fabric-config/configtx"
	cb "github.com/hyperledger/fabric-protos-go/common"
	ab "github.com/hyperledger/fabric-protos-go/orderer"
	"google.golang.org/grpc"

	"github.com/kordhq/kord/config"
	"github.com/kordhq/kord/kafka/embedded"
	"github.com/kordhq/kord/orderer/blocks"
	"github.com/kordhq/kord/orderer/channelconfig"
	"github.com/kordhq/kord/orderer/client"
	"github.com/kordhq/kord/orderer/genesis"
	"github.com/kordhq/kord/orderer/msp/mspgen"
	"github.com/kordhq/kord/orderer/msp/msptest"
	"github.com/kordhq/kord/orderer/server"
)

// idChannel is the application channel of the identity tests: Org1 and Org2, not Org3.
const idChannel = "idchannel"

// signer turns an msptest identity into a client: it signs with a low S (Fabric's form), a
// high S, or over other bytes (a well-formed signature that does not verify), and may
// serialize the certificate under another MSP ID.
type signer struct {
	id    *msptest.Identity
	mspID string // empty: id.MSPID
	sign  func(id *msptest.Identity, msg []byte) []byte
}

func lowS(id *msptest.Identity, msg []byte) []byte  { return id.Sign(msg) }
func highS(id *msptest.Identity, msg []byte) []byte { return id.SignHighS(msg) }
func wrongBytes(id *msptest.Identity, msg []byte) []byte {
	return id.Sign(append(append([]byte{}, msg...), 'x'))
}

func as(id *msptest.Identity) *signer { return &signer{id: id, sign: lowS} }

func (s *signer) Serialize() []byte {
	if s.mspID != "" {
		return s.id.SerializeAs(s.mspID)
	}
	return s.id.Serialize()
}

func (s *signer) Sign(msg []byte) ([]byte, error) {
	sig := s.sign(s.id, msg)
	if sig == nil {
		return nil, errors.New("signing failed")
	}
	return sig, nil
}

func (s *signer) NewSignatureHeader() (*cb.SignatureHeader, error) {
	nonce := make([]byte, 24)
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return &cb.SignatureHeader{Creator: s.Serialize(), Nonce: nonce}, nil
}

// logBuffer collects the orderer's log for the reasons Deliver does not send (a Deliver
// refusal is a bare status, as in Fabric; the reason goes to the log).
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logBuffer) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Len()
}

// idNet is one in-process orderer (orderer/server) on an embedded Kafka broker over TCP, with
// mutual TLS, whose system channel's consortium holds three organizations made by msptest:
// Org1 (identities from an intermediate CA), Org2 and Org3 (from their root CA), each with
// NodeOUs and a CRL revoking one of its certificates.
type idNet struct {
	srv              *server.Server
	logs             *logBuffer
	conn             *grpc.ClientConn
	tlsHash          []byte // SHA-256 of the client TLS certificate, bound into Deliver requests
	otherHash        []byte // SHA-256 of another certificate of the same TLS CA
	org1, org2, org3 *msptest.Org
}

func newIDNet(t *testing.T) *idNet {
	t.Helper()
	dir := t.TempDir()
	cluster, err := embedded.Start(context.Background(), embedded.Config{Brokers: 1})
	if err != nil {
		t.Fatalf("starting kfake: %v", err)
	}
	t.Cleanup(cluster.Close)

	spec := mspgen.Spec{OrdererOrgs: mspgen.DefaultSpec().OrdererOrgs}
	cryptoDir := filepath.Join(dir, "crypto")
	if err := mspgen.Generate(cryptoDir, spec); err != nil {
		t.Fatal(err)
	}
	ordOrg := spec.OrdererOrgs[0]
	ordDir := mspgen.OrdererOrgDir(cryptoDir, ordOrg.Domain)
	n := &idNet{
		logs: &logBuffer{},
		org1: msptest.NewOrgWithIntermediate(t, "Org1MSP"),
		org2: msptest.NewOrg(t, "Org2MSP"),
		org3: msptest.NewOrg(t, "Org3MSP"),
	}
	var orgs []genesis.OrgSpec
	for i, o := range []*msptest.Org{n.org1, n.org2, n.org3} {
		mspDir := filepath.Join(dir, "msp", o.MSPID)
		o.WriteMSPDir(t, mspDir, true)
		orgs = append(orgs, genesis.OrgSpec{Name: "Org" + strconv.Itoa(i+1), ID: o.MSPID, MSPDir: mspDir})
	}
	port := freePort(t)
	listen := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	profile := genesis.Profile{
		Brokers:           cluster.Addrs(),
		BatchTimeout:      100 * time.Millisecond,
		MaxMessageCount:   10,
		AbsoluteMaxBytes:  1 << 20,
		PreferredMaxBytes: 512 << 10,
		OrdererOrgs: []genesis.OrgSpec{{
			Name: ordOrg.Name, ID: ordOrg.MSPID, MSPDir: mspgen.OrgMSPDir(ordDir), Endpoints: []string{listen},
		}},
		ConsortiumOrgs: orgs,
	}
	blk, err := genesis.SystemChannelBlock(profile)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := proto.Marshal(blk)
	if err != nil {
		t.Fatal(err)
	}
	genesisFile := filepath.Join(dir, "genesis.block")
	if err := os.WriteFile(genesisFile, raw, 0o644); err != nil {
		t.Fatal(err)
	}

	cfg, _, err := config.LoadYAML(config.DefaultYAML, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	node := ordOrg.Nodes[0]
	nodeTLS := mspgen.OrdererTLSDir(ordDir, ordOrg.Domain, node)
	g := &cfg.General
	g.ListenAddress, g.ListenPort = "127.0.0.1", uint16(port)
	g.BootstrapMethod, g.BootstrapFile = "file", genesisFile
	g.LocalMSPDir, g.LocalMSPID = mspgen.OrdererMSPDir(ordDir, ordOrg.Domain, node), ordOrg.MSPID
	g.TLS.Enabled = true
	g.TLS.Certificate, g.TLS.PrivateKey = filepath.Join(nodeTLS, "server.crt"), filepath.Join(nodeTLS, "server.key")
	g.TLS.RootCAs = []string{filepath.Join(nodeTLS, "ca.crt")}
	g.TLS.ClientAuthRequired = true
	g.TLS.ClientRootCAs = []string{filepath.Join(nodeTLS, "ca.crt")}
	cfg.FileLedger.Location = filepath.Join(dir, "ledger")
	cfg.Operations.ListenAddress = "127.0.0.1:0"
	cfg.Kafka.Version = "1.0.0"
	cfg.Kafka.Topic.ReplicationFactor = 1
	cfg.Kafka.Retry.ShortInterval = time.Second

	log := slog.New(slog.NewTextHandler(n.logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	srv, err := server.New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	n.srv = srv
	// Registered after the cluster's clean-up, so it runs before it.
	t.Cleanup(srv.Stop)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("---- orderer log ----\n%s", n.logs.String())
		}
	})

	// The client's TLS certificate (the orderer organization's Admin's: any certificate of a
	// CA in ClientRootCAs does), and another one of the same CA for a request bound to it.
	adminTLS := filepath.Join(filepath.Dir(mspgen.UserMSPDir(ordDir, ordOrg.Domain, mspgen.AdminUser)), "tls")
	cert, err := tls.LoadX509KeyPair(filepath.Join(adminTLS, "client.crt"), filepath.Join(adminTLS, "client.key"))
	if err != nil {
		t.Fatal(err)
	}
	own := sha256.Sum256(cert.Certificate[0])
	n.tlsHash = own[:]
	other, err := tls.LoadX509KeyPair(g.TLS.Certificate, g.TLS.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	another := sha256.Sum256(other.Certificate[0])
	n.otherHash = another[:]
	caPEM, err := os.ReadFile(filepath.Join(nodeTLS, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		t.Fatal("no TLS CA certificate")
	}
	n.conn, err = client.Dial(context.Background(), srv.Addr(), &tls.Config{
		RootCAs: roots, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.conn.Close() })

	// Channel creation by Org1's admin (an intermediate-CA identity), through Broadcast as
	// `peer channel create` does; retried while the system channel connects to Kafka.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	app := profile
	app.ConsortiumOrgs = orgs[:2]
	tx, err := genesis.ChannelCreateTx(app, idChannel)
	if err != nil {
		t.Fatal(err)
	}
	admin := as(n.org1.Admin)
	for {
		signed, err := client.SignConfigUpdate(tx, admin)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := client.Broadcast(ctx, n.conn, signed)
		if err == nil && resp.Status == cb.Status_SUCCESS {
			break
		}
		if err == nil && resp.Status != cb.Status_SERVICE_UNAVAILABLE {
			t.Fatalf("creating %s: %s: %s", idChannel, resp.Status, resp.Info)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("creating %s: orderer not ready in time (last: %v %v)", idChannel, resp, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
	for {
		st, got := n.deliver(ctx, t, as(n.org1.Client), client.Specified(0), client.Specified(0), ab.SeekInfo_FAIL_IF_NOT_READY)
		if st == cb.Status_SUCCESS && len(got) == 1 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("block 0 of %s not delivered in time (last status %s)", idChannel, st)
		case <-time.After(200 * time.Millisecond):
		}
	}
	// Broadcast refuses until the new chain is connected: wait for a first transaction.
	for {
		resp, err := n.broadcast(ctx, t, as(n.org1.Client))
		if err == nil && resp.Status == cb.Status_SUCCESS {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s not accepting transactions in time (last: %v %v)", idChannel, resp, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
	return n
}

// broadcast sends an ENDORSER_TRANSACTION signed by s to the channel.
func (n *idNet) broadcast(ctx context.Context, t *testing.T, s client.Signer) (*ab.BroadcastResponse, error) {
	t.Helper()
	env, err := client.BoundEnvelope(s, cb.HeaderType_ENDORSER_TRANSACTION, idChannel, []byte("a transaction"), nil)
	if err != nil {
		t.Fatal(err)
	}
	return client.Broadcast(ctx, n.conn, env)
}

// seek is a Deliver request signed by s, bound to the client's TLS certificate.
func (n *idNet) seek(t *testing.T, s client.Signer, start, stop *ab.SeekPosition, behavior ab.SeekInfo_SeekBehavior) *cb.Envelope {
	t.Helper()
	data, err := proto.Marshal(&ab.SeekInfo{Start: start, Stop: stop, Behavior: behavior})
	if err != nil {
		t.Fatal(err)
	}
	env, err := client.BoundEnvelope(s, cb.HeaderType_DELIVER_SEEK_INFO, idChannel, data, n.tlsHash)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// deliver sends one request and returns its final status and the blocks received.
func (n *idNet) deliver(ctx context.Context, t *testing.T, s client.Signer, start, stop *ab.SeekPosition, behavior ab.SeekInfo_SeekBehavior) (cb.Status, []*cb.Block) {
	t.Helper()
	return n.deliverEnv(ctx, t, n.seek(t, s, start, stop, behavior))
}

func (n *idNet) deliverEnv(ctx context.Context, t *testing.T, env *cb.Envelope) (cb.Status, []*cb.Block) {
	t.Helper()
	dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	var got []*cb.Block
	st, err := client.Deliver(dctx, n.conn, env, func(b *cb.Block) error { got = append(got, b); return nil })
	if err != nil {
		t.Fatalf("deliver: %v", err)
	}
	return st, got
}

// stillServing checks that a good client (Org1's client) is served both ways.
func (n *idNet) stillServing(ctx context.Context, t *testing.T) {
	t.Helper()
	good := as(n.org1.Client)
	if resp, err := n.broadcast(ctx, t, good); err != nil || resp.Status != cb.Status_SUCCESS {
		t.Fatalf("a good client's Broadcast: %v %v", resp, err)
	}
	if st, got := n.deliver(ctx, t, good, client.Newest(), client.Newest(), ab.SeekInfo_BLOCK_UNTIL_READY); st != cb.Status_SUCCESS || len(got) != 1 {
		t.Fatalf("a good client's Deliver: %s with %d blocks", st, len(got))
	}
}

// logSince returns what the orderer logged after offset off.
func (n *idNet) logSince(off int) string {
	s := n.logs.String()
	if off > len(s) {
		return ""
	}
	return s[off:]
}

// configOf is the channel's current config, read through Deliver as a client reads it.
func (n *idNet) configOf(ctx context.Context, t *testing.T) *channelconfig.Values {
	t.Helper()
	reader := as(n.org1.Client)
	st, got := n.deliver(ctx, t, reader, client.Newest(), client.Newest(), ab.SeekInfo_FAIL_IF_NOT_READY)
	if st != cb.Status_SUCCESS || len(got) != 1 {
		t.Fatalf("newest block: %s", st)
	}
	idx, err := blocks.LastConfigIndex(got[0])
	if err != nil {
		t.Fatal(err)
	}
	st, got = n.deliver(ctx, t, reader, client.Specified(idx), client.Specified(idx), ab.SeekInfo_FAIL_IF_NOT_READY)
	if st != cb.Status_SUCCESS || len(got) != 1 {
		t.Fatalf("config block %d: %s", idx, st)
	}
	v, err := channelconfig.FromBlock(got[0])
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// follower is a Deliver stream following the channel from its newest block on.
type follower struct {
	blocks chan uint64
	done   chan cb.Status // the final status (or -1 if the stream broke)
}

func (n *idNet) follow(ctx context.Context, t *testing.T, s client.Signer) *follower {
	t.Helper()
	stream, err := ab.NewAtomicBroadcastClient(n.conn).Deliver(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(n.seek(t, s, client.Newest(), client.Specified(client.MaxBlock), ab.SeekInfo_BLOCK_UNTIL_READY)); err != nil {
		t.Fatal(err)
	}
	f := &follower{blocks: make(chan uint64, 1000), done: make(chan cb.Status, 1)}
	go func() {
		for {
			resp, err := stream.Recv()
			if err != nil {
				if !errors.Is(err, io.EOF) {
					f.done <- -1
				}
				close(f.done)
				return
			}
			switch r := resp.Type.(type) {
			case *ab.DeliverResponse_Block:
				f.blocks <- r.Block.Header.Number
			case *ab.DeliverResponse_Status:
				f.done <- r.Status
				return
			}
		}
	}()
	return f
}

// next waits for the stream's next block.
func (f *follower) next(t *testing.T, ctx context.Context) uint64 {
	t.Helper()
	select {
	case b := <-f.blocks:
		return b
	case st := <-f.done:
		t.Fatalf("stream ended with %s while a block was expected", st)
	case <-ctx.Done():
		t.Fatal("no block in time")
	}
	return 0
}

// end waits for the stream's final status and returns it with the blocks received meanwhile.
func (f *follower) end(t *testing.T, ctx context.Context) (cb.Status, []uint64) {
	t.Helper()
	var got []uint64
	for {
		select {
		case b := <-f.blocks:
			got = append(got, b)
		case st := <-f.done:
			for {
				select {
				case b := <-f.blocks:
					got = append(got, b)
				default:
					return st, got
				}
			}
		case <-ctx.Done():
			t.Fatalf("stream not ended in time (blocks received: %v)", got)
		}
	}
}

// TestIdentities runs Broadcast and Deliver end to end over gRPC (mutual TLS) with every kind
// of identity the issue lists, against a channel whose organizations come from msptest: each
// is admitted or refused with Fabric's status and a reason that says why, and a good client is
// served between every two cases. Then: a Deliver stream outliving its client's certificate,
// the TLS binding of Deliver requests, and a Deliver stream whose read permission a config
// update takes away.
func TestIdentities(t *testing.T) {
	n := newIDNet(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	stranger := msptest.NewRootCA(t, "ca.stranger")
	unknownCA := stranger.Issue(t, "client@Org1MSP", msptest.CertOptions{OUs: []string{msptest.OUClient}})
	unknownCA.MSPID = "Org1MSP"
	const ok, forbidden, badRequest = cb.Status_SUCCESS, cb.Status_FORBIDDEN, cb.Status_BAD_REQUEST
	cases := []struct {
		name string
		s    *signer
		// Broadcast: status and what its info must say; Deliver: status and what the
		// orderer's log must say (a Deliver refusal is a bare status).
		bStatus cb.Status
		bReason []string
		dStatus cb.Status
		dReason []string
	}{
		{"Org1 client (intermediate CA)", as(n.org1.Client), ok, nil, ok, nil},
		{"Org1 admin (intermediate CA)", as(n.org1.Admin), ok, nil, ok, nil},
		{"Org1 peer: a reader, not a writer", as(n.org1.Peer), forbidden, []string{"/Channel/Writers", "Org1MSP"}, ok, nil},
		{"Org1 orderer-OU identity: neither", as(n.org1.Orderer), forbidden, []string{"/Channel/Writers"}, forbidden, []string{"/Channel/Readers"}},
		{"Org2 client (root CA)", as(n.org2.Client), ok, nil, ok, nil},
		{"Org2 admin (root CA)", as(n.org2.Admin), ok, nil, ok, nil},
		{"Org2 peer: a reader, not a writer", as(n.org2.Peer), forbidden, []string{"/Channel/Writers"}, ok, nil},
		{"Org2 orderer-OU identity: neither", as(n.org2.Orderer), forbidden, []string{"/Channel/Writers"}, forbidden, []string{"/Channel/Readers"}},
		{"Org1 certificate without a node OU", as(n.org1.Member), forbidden, []string{"/Channel/Writers", "node OU"}, forbidden, []string{"/Channel/Readers", "node OU"}},
		{"expired certificate", as(n.org1.Expired), badRequest, []string{"expired"}, forbidden, []string{"expired"}},
		{"revoked certificate", as(n.org1.Revoked), forbidden, []string{"/Channel/Writers", "revoked"}, forbidden, []string{"/Channel/Readers", "revoked"}},
		{"Org3 client: in the consortium, not in the channel", as(n.org3.Client), forbidden, []string{"/Channel/Writers", "Org3MSP", "not defined on this channel"}, forbidden, []string{"/Channel/Readers", "Org3MSP", "not defined on this channel"}},
		{"certificate of an unknown CA", as(unknownCA), forbidden, []string{"/Channel/Writers", "no valid chain"}, forbidden, []string{"/Channel/Readers", "no valid chain"}},
		{"unknown MSP ID", &signer{id: n.org1.Client, mspID: "NoSuchMSP", sign: lowS}, forbidden, []string{"NoSuchMSP", "not defined on this channel"}, forbidden, []string{"NoSuchMSP", "not defined on this channel"}},
		{"high-S signature", &signer{id: n.org1.Client, sign: highS}, forbidden, []string{"/Channel/Writers", "high S"}, forbidden, []string{"/Channel/Readers", "high S"}},
		{"signature over other bytes", &signer{id: n.org1.Client, sign: wrongBytes}, forbidden, []string{"/Channel/Writers", "signature does not verify"}, forbidden, []string{"/Channel/Readers", "signature does not verify"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, err := n.broadcast(ctx, t, c.s)
			if err != nil {
				t.Fatalf("Broadcast: %v", err)
			}
			if resp.Status != c.bStatus || !containsAll(resp.Info, c.bReason) {
				t.Errorf("Broadcast: %s %q; want %s with a reason naming %q", resp.Status, resp.Info, c.bStatus, c.bReason)
			} else if resp.Status != ok {
				t.Logf("Broadcast: %s: %s", resp.Status, resp.Info)
			}
			off := n.logs.Len()
			st, got := n.deliver(ctx, t, c.s, client.Newest(), client.Newest(), ab.SeekInfo_BLOCK_UNTIL_READY)
			if st != c.dStatus || (st == ok) != (len(got) == 1) {
				t.Errorf("Deliver: %s with %d blocks; want %s", st, len(got), c.dStatus)
			}
			if st != ok {
				line := refusalLine(n.logSince(off))
				if !containsAll(line, c.dReason) {
					t.Errorf("Deliver refusal logged as %q; want a reason naming %q", line, c.dReason)
				} else {
					t.Logf("Deliver: %s: %s", st, line)
				}
			}
			n.stillServing(ctx, t)
		})
	}

	t.Run("Deliver stream outliving its certificate", func(t *testing.T) {
		// Valid for a few seconds: the stream is served until then and refused the first
		// block written after.
		expiry := time.Now().Add(6 * time.Second)
		shortLived := as(n.org1.Issue(t, "short-lived@Org1MSP", msptest.CertOptions{OUs: []string{msptest.OUClient}, NotAfter: expiry}))
		expiry = shortLived.id.Cert.NotAfter
		f := n.follow(ctx, t, shortLived)
		first := f.next(t, ctx)
		// While the certificate is valid, the stream gets the blocks written.
		if resp, err := n.broadcast(ctx, t, as(n.org1.Client)); err != nil || resp.Status != ok {
			t.Fatalf("Broadcast: %v %v", resp, err)
		}
		if b := f.next(t, ctx); b <= first {
			t.Fatalf("block %d after %d", b, first)
		}
		if time.Now().After(expiry) {
			t.Fatalf("the certificate expired before the stream could be seen working (machine too slow?)")
		}
		time.Sleep(time.Until(expiry) + 1100*time.Millisecond)
		// Blocks written before the expiry were sent before it; the first block written after
		// it ends the stream instead of being sent.
		for drained := false; !drained; {
			select {
			case <-f.blocks:
			default:
				drained = true
			}
		}
		off := n.logs.Len()
		if resp, err := n.broadcast(ctx, t, as(n.org1.Client)); err != nil || resp.Status != ok {
			t.Fatalf("Broadcast: %v %v", resp, err)
		}
		st, got := f.end(t, ctx)
		if st != forbidden || len(got) != 0 {
			t.Fatalf("stream ended with %s after blocks %v; want FORBIDDEN and no block written after the expiry", st, got)
		}
		if log := n.logSince(off); !strings.Contains(log, "expired") {
			t.Errorf("no log of the expiry: %s", log)
		}
		if resp, err := n.broadcast(ctx, t, shortLived); err != nil || resp.Status != badRequest || !strings.Contains(resp.Info, "expired") {
			t.Errorf("Broadcast by the expired certificate: %v %v; want BAD_REQUEST naming the expiry", resp, err)
		}
		n.stillServing(ctx, t)
	})

	t.Run("Deliver bound to the client TLS certificate", func(t *testing.T) {
		reader := as(n.org1.Client)
		for _, c := range []struct {
			name   string
			hash   []byte
			status cb.Status
			reason string
		}{
			{"no hash", nil, badRequest, "does not carry its TLS certificate hash"},
			{"hash of another certificate", n.otherHash, badRequest, "does not match"},
			{"hash of the client's certificate", n.tlsHash, ok, ""},
		} {
			data, err := proto.Marshal(&ab.SeekInfo{Start: client.Newest(), Stop: client.Newest(), Behavior: ab.SeekInfo_BLOCK_UNTIL_READY})
			if err != nil {
				t.Fatal(err)
			}
			env, err := client.BoundEnvelope(reader, cb.HeaderType_DELIVER_SEEK_INFO, idChannel, data, c.hash)
			if err != nil {
				t.Fatal(err)
			}
			off := n.logs.Len()
			st, _ := n.deliverEnv(ctx, t, env)
			if st != c.status {
				t.Errorf("%s: %s, want %s", c.name, st, c.status)
			}
			if c.reason != "" && !strings.Contains(refusalLine(n.logSince(off)), c.reason) {
				t.Errorf("%s: refusal logged as %q, want %q", c.name, refusalLine(n.logSince(off)), c.reason)
			}
		}
		n.stillServing(ctx, t)
	})

	t.Run("Deliver stream losing its read permission", func(t *testing.T) {
		reader := as(n.org2.Client)
		f := n.follow(ctx, t, reader)
		f.next(t, ctx)
		// Org2's admin restricts Org2's Readers to admins: Org2's client no longer reads.
		cfg := n.configOf(ctx, t)
		upd, err := client.ComputeUpdate(cfg.Config, idChannel, func(tx *fconfigtx.ConfigTx) error {
			return tx.Application().Organization("Org2").SetPolicy("Readers", fconfigtx.Policy{Type: fconfigtx.SignaturePolicyType, Rule: "OR('Org2MSP.admin')"})
		})
		if err != nil {
			t.Fatal(err)
		}
		signed, err := client.SignConfigUpdate(upd, as(n.org2.Admin))
		if err != nil {
			t.Fatal(err)
		}
		off := n.logs.Len()
		if resp, err := client.Broadcast(ctx, n.conn, signed); err != nil || resp.Status != ok {
			t.Fatalf("config update: %v %v", resp, err)
		}
		st, got := f.end(t, ctx)
		if st != forbidden || len(got) != 0 {
			t.Fatalf("stream ended with %s after blocks %v; want FORBIDDEN before the config block", st, got)
		}
		if log := n.logSince(off); !strings.Contains(log, "/Channel/Readers") {
			t.Errorf("no log naming /Channel/Readers: %s", log)
		}
		after := n.configOf(ctx, t)
		if after.Sequence != cfg.Sequence+1 {
			t.Fatalf("config sequence %d after the update, want %d", after.Sequence, cfg.Sequence+1)
		}
		for _, c := range []struct {
			s    *signer
			want cb.Status
		}{{reader, forbidden}, {as(n.org2.Peer), forbidden}, {as(n.org2.Admin), ok}, {as(n.org1.Peer), ok}} {
			if st, _ := n.deliver(ctx, t, c.s, client.Newest(), client.Newest(), ab.SeekInfo_BLOCK_UNTIL_READY); st != c.want {
				t.Errorf("%s after the update: Deliver %s, want %s", c.s.id.Cert.Subject.CommonName, st, c.want)
			}
		}
		// Writers did not change: Org2's client still writes.
		if resp, err := n.broadcast(ctx, t, reader); err != nil || resp.Status != ok {
			t.Errorf("Org2 client's Broadcast after the update: %v %v", resp, err)
		}
		n.stillServing(ctx, t)
	})
}

func containsAll(s string, subs []string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

// refusalLine is the first Deliver refusal in a stretch of the orderer's log.
func refusalLine(log string) string {
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, "deliver refused") || strings.Contains(line, "no longer authorized") {
			return line
		}
	}
	return fmt.Sprintf("(no refusal logged in %d bytes)", len(log))
}
