package server

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/golang/protobuf/proto"
	"google.golang.org/grpc"

	"github.com/kordhq/kord/kafka/embedded"
	"github.com/kordhq/kord/orderer/client"
	"github.com/kordhq/kord/orderer/genesis"
	"github.com/kordhq/kord/orderer/loadgen"
)

// BenchmarkBroadcastDeliver is the whole orderer in this process on an in-memory kfake broker
// over TCP: properly signed 1 KiB ENDORSER_TRANSACTION envelopes, prepared before the clock,
// Broadcast on 1 or 16 streams, a Deliver stream following the chain and matching them (the
// issue's settings: MaxMessageCount 500, BatchTimeout 200ms). One op is one envelope
// acknowledged and delivered; acked/s, delivered/s and the send→delivery p99 are reported.
// The client, Kafka and the orderer share the machine's cores, as in the setting.
func BenchmarkBroadcastDeliver(b *testing.B) {
	n := newTestNet(b, embedded.Config{}, func(n *testNet) {
		n.cluster.Close()
		n.kcfg.SyncWrites, n.kcfg.DataDir = false, ""
		n.restartKafka()
		n.profile.MaxMessageCount = 500
		n.profile.BatchTimeout = 200 * time.Millisecond
		blk, err := genesis.SystemChannelBlock(n.profile)
		if err != nil {
			b.Fatal(err)
		}
		raw, err := proto.Marshal(blk)
		if err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(n.cfg.General.BootstrapFile, raw, 0o644); err != nil {
			b.Fatal(err)
		}
	})
	n.start()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	n.createChannel(ctx, "bench")
	for _, streams := range []int{1, 16} {
		b.Run(map[int]string{1: "streams=1", 16: "streams=16"}[streams], func(b *testing.B) {
			count := uint64(max(b.N, 2000)) // a short run is all warm-up
			cfg := loadgen.Config{
				Dial:    func(ctx context.Context) (*grpc.ClientConn, error) { return client.Dial(ctx, n.srv.Addr(), nil) },
				Signer:  n.user,
				Channel: "bench",
				Streams: streams,
				Count:   count,
				Size:    1024,
				Deliver: true,
			}
			b.ResetTimer()
			rep, err := loadgen.Run(ctx, cfg)
			b.StopTimer()
			if err != nil {
				b.Fatal(err)
			}
			if rep.Acknowledged != count || rep.Delivered != count {
				b.Fatalf("sent %d: acknowledged %d, delivered %d, refused %v, errors %v", count, rep.Acknowledged, rep.Delivered, rep.Refused, rep.Errors)
			}
			b.ReportMetric(rep.AcknowledgedRate, "acked/s")
			b.ReportMetric(rep.DeliveredRate, "delivered/s")
			b.ReportMetric(rep.Latency.P99, "p99-ms")
			b.ReportMetric(rep.EnvelopesPerBlock, "envs/block")
		})
	}
}
