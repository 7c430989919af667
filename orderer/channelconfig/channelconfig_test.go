package channelconfig

import (
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/golang/protobuf/proto"
	cb "github.com/hyperledger/fabric-protos-go/common"
	ab "github.com/hyperledger/fabric-protos-go/orderer"
)

// The genesis block of the conformance vectors was made by configtxgen from a configtx.yaml
// with Kafka consensus, brokers 127.0.0.1:29092-29094, BatchTimeout 500ms, MaxMessageCount 10,
// AbsoluteMaxBytes 1 MB, PreferredMaxBytes 64 KB.
func genesis(t *testing.T) *cb.Block {
	t.Helper()
	raw, err := os.ReadFile("../chain/testdata/conformance/basic-cutting/genesis.block")
	if err != nil {
		t.Fatal(err)
	}
	b := &cb.Block{}
	if err := proto.Unmarshal(raw, b); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestFromConfigtxgenBlock(t *testing.T) {
	v, err := FromBlock(genesis(t))
	if err != nil {
		t.Fatal(err)
	}
	if v.ChannelID != "syschannel" || !v.System || v.Sequence != 0 || v.Consensus != "kafka" {
		t.Fatalf("%+v", v)
	}
	if want := []string{"127.0.0.1:29092", "127.0.0.1:29093", "127.0.0.1:29094"}; !reflect.DeepEqual(v.Brokers, want) {
		t.Fatalf("brokers %v", v.Brokers)
	}
	if v.BatchSize.MaxMessageCount != 10 || v.BatchSize.AbsoluteMaxBytes != 1<<20 || v.BatchSize.PreferredMaxBytes != 64<<10 || v.BatchTimeout != 500*time.Millisecond {
		t.Fatalf("batch %+v %v", v.BatchSize, v.BatchTimeout)
	}
	if !v.Resubmission() {
		t.Fatal("V2_0 orderer capability should enable re-submission")
	}
	if err := v.RequireKafka(); err != nil {
		t.Fatal(err)
	}
}

func TestRefusals(t *testing.T) {
	base := func() *cb.Config {
		c, err := FromBlock(genesis(t))
		if err != nil {
			t.Fatal(err)
		}
		return proto.Clone(c.Config).(*cb.Config)
	}
	set := func(c *cb.Config, key string, m proto.Message) {
		b, _ := proto.Marshal(m)
		c.ChannelGroup.Groups[OrdererGroup].Values[key].Value = b
	}
	cases := []struct {
		name   string
		mutate func(*cb.Config)
		want   string
	}{
		{"etcdraft", func(c *cb.Config) { set(c, ConsensusTypeKey, &ab.ConsensusType{Type: "etcdraft"}) }, "ConsensusType"},
		{"zero count", func(c *cb.Config) {
			set(c, BatchSizeKey, &ab.BatchSize{MaxMessageCount: 0, AbsoluteMaxBytes: 10, PreferredMaxBytes: 5})
		}, "MaxMessageCount"},
		{"preferred above absolute", func(c *cb.Config) {
			set(c, BatchSizeKey, &ab.BatchSize{MaxMessageCount: 1, AbsoluteMaxBytes: 10, PreferredMaxBytes: 50})
		}, "PreferredMaxBytes"},
		{"bad timeout", func(c *cb.Config) { set(c, BatchTimeoutKey, &ab.BatchTimeout{Timeout: "soon"}) }, "BatchTimeout"},
		{"no orderer group", func(c *cb.Config) { delete(c.ChannelGroup.Groups, OrdererGroup) }, "Orderer group"},
		{"garbage value", func(c *cb.Config) { c.ChannelGroup.Groups[OrdererGroup].Values[BatchSizeKey].Value = []byte{0xff} }, "BatchSize"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := base()
			tc.mutate(c)
			v, err := FromConfig(c)
			if err == nil {
				err = v.RequireKafka()
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one naming %s", err, tc.want)
			}
		})
	}
}
