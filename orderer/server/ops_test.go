package server

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	cb "github.com/hyperledger/fabric-protos-go/common"
	ab "github.com/hyperledger/fabric-protos-go/orderer"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/kordhq/kord/config"
	"github.com/kordhq/kord/kafka/embedded"
	"github.com/kordhq/kord/orderer/client"
)

// TestMetricsProvider: /metrics exists only with Metrics.Provider prometheus.
func TestMetricsProvider(t *testing.T) {
	for _, tc := range []struct {
		provider string
		code     int
	}{{"prometheus", http.StatusOK}, {"disabled", http.StatusNotFound}, {"statsd", http.StatusNotFound}} {
		cfg := config.Defaults()
		cfg.Metrics.Provider = tc.provider
		s := &Server{cfg: cfg, metrics: newMetrics("test")}
		rec := httptest.NewRecorder()
		s.opsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		if rec.Code != tc.code {
			t.Errorf("provider %s: /metrics answered %d, want %d", tc.provider, rec.Code, tc.code)
		}
	}
}

// TestGRPCMessageLimit: General.MaxRecvMsgSize bounds what a client may send.
func TestGRPCMessageLimit(t *testing.T) {
	n := newTestNet(t, embedded.Config{}, func(n *testNet) {
		n.cfg.General.MaxRecvMsgSize = 64 * 1024
	})
	n.start()
	ctx := testCtx(t, 30*time.Second)
	conn := n.dial(nil)
	stream, err := ab.NewAtomicBroadcastClient(conn).Broadcast(ctx)
	if err != nil {
		t.Fatal(err)
	}
	env, err := client.Envelope(n.user, cb.HeaderType_ENDORSER_TRANSACTION, n.srv.Registrar().SystemChannelID(), []byte(strings.Repeat("x", 100*1024)))
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(env); err != nil {
		t.Fatal(err)
	}
	_, err = stream.Recv()
	if status.Code(err) != codes.ResourceExhausted {
		t.Errorf("envelope above MaxRecvMsgSize: %v, want ResourceExhausted", err)
	}
}

// TestProfileEndpoint: General.Profile.Enabled serves pprof on its own address, and a busy
// address is an error naming the key.
func TestProfileEndpoint(t *testing.T) {
	n := newTestNet(t, embedded.Config{}, func(n *testNet) {
		n.cfg.General.Profile = config.Profile{Enabled: true, Address: "127.0.0.1:0"}
	})
	n.start()
	resp, err := http.Get("http://" + n.srv.ProfileAddr() + "/debug/pprof/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/debug/pprof/cmdline answered %d", resp.StatusCode)
	}

	busy := newTestNet(t, embedded.Config{}, func(b *testNet) {
		b.cfg.General.Profile = config.Profile{Enabled: true, Address: n.srv.ProfileAddr()}
	})
	err = busy.startErr()
	if err == nil || !strings.Contains(err.Error(), "General.Profile.Address="+n.srv.ProfileAddr()) {
		t.Errorf("profile address in use: %v, want an error naming General.Profile.Address", err)
	}
}
