package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/golang/protobuf/proto"
	cb "github.com/hyperledger/fabric-protos-go/common"
	ab "github.com/hyperledger/fabric-protos-go/orderer"
	"google.golang.org/grpc"
)

// ParsePosition reads a seek position as operators write it: "oldest", "newest" or a block
// number.
func ParsePosition(s string) (*ab.SeekPosition, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "oldest":
		return Oldest(), nil
	case "newest":
		return Newest(), nil
	}
	n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return nil, fmt.Errorf("block position %q: want oldest, newest or a block number", s)
	}
	return Specified(n), nil
}

// TLSFiles names the PEM files of a TLS client connection to an orderer.
type TLSFiles struct {
	// CA is the orderer's TLS CA certificate; empty means plaintext unless Enabled.
	CA string
	// Cert and Key are the client certificate and key (orderers with ClientAuthRequired).
	Cert, Key string
	// ServerName overrides the name checked in the orderer's certificate.
	ServerName string
	// Enabled uses TLS with the system's roots when CA is empty.
	Enabled bool
}

// Config builds the TLS configuration, or nil for plaintext.
func (f TLSFiles) Config() (*tls.Config, error) {
	if f.CA == "" && !f.Enabled && f.Cert == "" {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: f.ServerName}
	if f.CA != "" {
		pem, err := os.ReadFile(f.CA)
		if err != nil {
			return nil, fmt.Errorf("TLS CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("TLS CA %s holds no PEM certificate", f.CA)
		}
		tc.RootCAs = pool
	}
	if (f.Cert == "") != (f.Key == "") {
		return nil, errors.New("TLS client certificate and key must be given together")
	}
	if f.Cert != "" {
		cert, err := tls.LoadX509KeyPair(f.Cert, f.Key)
		if err != nil {
			return nil, fmt.Errorf("TLS client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// FetchOptions select the blocks of a Fetch.
type FetchOptions struct {
	Channel     string
	Start, Stop *ab.SeekPosition
	// Wait makes the orderer wait for blocks not yet written (BLOCK_UNTIL_READY) instead of
	// answering NOT_FOUND.
	Wait bool
	// BestEffort asks the orderer to serve its ledger even while its consenter is in error.
	BestEffort bool
}

// StatusError is a Deliver request that ended with a status other than SUCCESS.
type StatusError struct {
	Channel string
	Status  cb.Status
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("orderer answered %s for channel %s", e.Status, e.Channel)
}

// Fetch sends one signed seek request and calls fn for every block, in order, until the
// orderer's final status; a status other than SUCCESS is a *StatusError.
func Fetch(ctx context.Context, conn *grpc.ClientConn, s Signer, o FetchOptions, fn func(*cb.Block) error) error {
	behavior := ab.SeekInfo_FAIL_IF_NOT_READY
	if o.Wait {
		behavior = ab.SeekInfo_BLOCK_UNTIL_READY
	}
	info := &ab.SeekInfo{Start: o.Start, Stop: o.Stop, Behavior: behavior}
	if o.BestEffort {
		info.ErrorResponse = ab.SeekInfo_BEST_EFFORT
	}
	data, err := proto.Marshal(info)
	if err != nil {
		return err
	}
	req, err := Envelope(s, cb.HeaderType_DELIVER_SEEK_INFO, o.Channel, data)
	if err != nil {
		return err
	}
	st, err := Deliver(ctx, conn, req, fn)
	if err != nil {
		return err
	}
	if st != cb.Status_SUCCESS {
		return &StatusError{Channel: o.Channel, Status: st}
	}
	return nil
}
