package configtx

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/golang/protobuf/proto"
	cb "github.com/hyperledger/fabric-protos-go/common"
)

// FuzzConfigUpdate feeds arbitrary envelope bytes to the channel-creation parser and to the
// config-update validator: untrusted input must give an error, never a panic.
func FuzzConfigUpdate(f *testing.F) {
	dir := filepath.Join(vectors, "config-update")
	for _, name := range []string{"anchors-Org1MSP.pb", "mmc6.pb"} {
		if raw, err := os.ReadFile(filepath.Join(dir, "config-updates", name)); err == nil {
			f.Add(raw)
		}
	}
	f.Add([]byte{})
	raw, err := os.ReadFile(filepath.Join(dir, "blocks", "mychannel", "0.block"))
	if err != nil {
		f.Fatal(err)
	}
	b := &cb.Block{}
	if err := proto.Unmarshal(raw, b); err != nil {
		f.Fatal(err)
	}
	env := &cb.Envelope{}
	_ = proto.Unmarshal(b.Data.Data[0], env)
	p := &cb.Payload{}
	_ = proto.Unmarshal(env.Payload, p)
	ce := &cb.ConfigEnvelope{}
	_ = proto.Unmarshal(p.Data, ce)
	v, err := NewValidator("mychannel", ce.Config, acceptAll{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		e := &cb.Envelope{}
		if proto.Unmarshal(data, e) != nil {
			return
		}
		_, _ = ParseCreationRequest(e)
		_, _ = v.ProposeConfigUpdate(e)
	})
}
