package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/golang/protobuf/proto"
	cb "github.com/hyperledger/fabric-protos-go/common"
	ab "github.com/hyperledger/fabric-protos-go/orderer"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/kordhq/kord/orderer/deliver"
	"github.com/kordhq/kord/orderer/msp/mspgen"
)

// tlsOrderer is a minimal orderer behind mutual TLS: it acknowledges every envelope, puts
// each in a block of its own, and refuses a Deliver request not bound to the client's TLS
// certificate.
type tlsOrderer struct {
	ab.UnimplementedAtomicBroadcastServer
	mu     sync.Mutex
	cond   *sync.Cond
	queue  [][]byte
	height uint64
}

func (o *tlsOrderer) Broadcast(srv ab.AtomicBroadcast_BroadcastServer) error {
	for {
		env, err := srv.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		raw, _ := proto.Marshal(env)
		o.mu.Lock()
		o.queue = append(o.queue, raw)
		o.cond.Broadcast()
		o.mu.Unlock()
		if err := srv.Send(&ab.BroadcastResponse{Status: cb.Status_SUCCESS}); err != nil {
			return err
		}
	}
}

func (o *tlsOrderer) Deliver(srv ab.AtomicBroadcast_DeliverServer) error {
	req, err := srv.Recv()
	if err != nil {
		return err
	}
	p := &cb.Payload{}
	chdr := &cb.ChannelHeader{}
	if err := proto.Unmarshal(req.Payload, p); err != nil || p.Header == nil || proto.Unmarshal(p.Header.ChannelHeader, chdr) != nil {
		return fmt.Errorf("bad seek request")
	}
	if want := deliver.ClientCertHash(srv.Context()); want == nil || !bytes.Equal(chdr.TlsCertHash, want) {
		return srv.Send(&ab.DeliverResponse{Type: &ab.DeliverResponse_Status{Status: cb.Status_FORBIDDEN}})
	}
	block := func(n uint64, data [][]byte) error {
		return srv.Send(&ab.DeliverResponse{Type: &ab.DeliverResponse_Block{Block: &cb.Block{Header: &cb.BlockHeader{Number: n}, Data: &cb.BlockData{Data: data}}}})
	}
	if err := block(0, nil); err != nil {
		return err
	}
	for {
		o.mu.Lock()
		for len(o.queue) == 0 && srv.Context().Err() == nil {
			o.cond.Wait()
		}
		if srv.Context().Err() != nil {
			o.mu.Unlock()
			return nil
		}
		env := o.queue[0]
		o.queue = o.queue[1:]
		o.height++
		n := o.height
		o.mu.Unlock()
		if err := block(n, [][]byte{env}); err != nil {
			return err
		}
	}
}

// TestBenchMutualTLS runs kordctl bench over mutual TLS with a server name override: the
// Deliver request must carry the hash of the client certificate.
func TestBenchMutualTLS(t *testing.T) {
	dir := t.TempDir()
	spec := mspgen.DefaultSpec()
	if err := mspgen.Generate(dir, spec); err != nil {
		t.Fatal(err)
	}
	ord := spec.OrdererOrgs[0]
	tlsDir := mspgen.OrdererTLSDir(mspgen.OrdererOrgDir(dir, ord.Domain), ord.Domain, ord.Nodes[0])
	org := spec.PeerOrgs[0]
	orgDir := mspgen.PeerOrgDir(dir, org.Domain)
	userMSP := mspgen.UserMSPDir(orgDir, org.Domain, "User1")
	userTLS := filepath.Join(filepath.Dir(userMSP), "tls")

	pair, err := tls.LoadX509KeyPair(filepath.Join(tlsDir, "server.crt"), filepath.Join(tlsDir, "server.key"))
	if err != nil {
		t.Fatal(err)
	}
	clientCA, err := os.ReadFile(filepath.Join(userTLS, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(clientCA)
	o := &tlsOrderer{}
	o.cond = sync.NewCond(&o.mu)
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(&tls.Config{
		Certificates: []tls.Certificate{pair}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool, MinVersion: tls.VersionTLS12,
	})))
	ab.RegisterAtomicBroadcastServer(srv, o)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(l) }()
	defer func() {
		o.mu.Lock()
		o.cond.Broadcast()
		o.mu.Unlock()
		srv.Stop()
	}()

	out := filepath.Join(dir, "report.jsonl")
	err = runBench(context.Background(), []string{
		"-o", l.Addr().String(), "-c", "ch", "--msp-dir", userMSP, "--msp-id", org.MSPID,
		"--tls-ca", filepath.Join(tlsDir, "ca.crt"), "--tls-server-name", ord.Nodes[0] + "." + ord.Domain,
		"--tls-cert", filepath.Join(userTLS, "client.crt"), "--tls-key", filepath.Join(userTLS, "client.key"),
		"--count", "50", "--streams", "2", "--progress", "off", "--json", out,
	})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var rep struct{ Sent, Acknowledged, Delivered, Blocks uint64 }
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatalf("%v: %s", err, raw)
	}
	if rep.Sent != 50 || rep.Acknowledged != 50 || rep.Delivered != 50 || rep.Blocks != 50 {
		t.Fatalf("report %s", raw)
	}

	// Without a client certificate the handshake fails: an error, not a report.
	if err := runBench(context.Background(), []string{
		"-o", l.Addr().String(), "-c", "ch", "--msp-dir", userMSP, "--msp-id", org.MSPID,
		"--tls-ca", filepath.Join(tlsDir, "ca.crt"), "--tls-server-name", ord.Nodes[0] + "." + ord.Domain,
		"--count", "5", "--progress", "off", "--json", out,
	}); err == nil {
		t.Fatal("bench without a client certificate succeeded against a mutual-TLS orderer")
	}
}
