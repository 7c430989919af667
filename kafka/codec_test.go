package kafka

import (
	"bytes"
	"errors"
	"testing"

	"github.com/golang/protobuf/proto"
	ab "github.com/hyperledger/fabric-protos-go/orderer"
)

func TestCodecRoundTrip(t *testing.T) {
	big := bytes.Repeat([]byte{0xab}, 1<<16)
	for _, tc := range []struct {
		name  string
		value []byte
		check func(t *testing.T, m *ab.KafkaMessage)
	}{
		{"connect", MarshalConnect(), func(t *testing.T, m *ab.KafkaMessage) {
			if m.GetConnect() == nil || len(m.GetConnect().Payload) != 0 {
				t.Fatalf("not an empty CONNECT: %v", m)
			}
		}},
		{"time to cut 0", MarshalTimeToCut(0), func(t *testing.T, m *ab.KafkaMessage) {
			if m.GetTimeToCut() == nil || m.GetTimeToCut().BlockNumber != 0 {
				t.Fatalf("got %v", m)
			}
		}},
		{"time to cut max", MarshalTimeToCut(^uint64(0)), func(t *testing.T, m *ab.KafkaMessage) {
			if m.GetTimeToCut().GetBlockNumber() != ^uint64(0) {
				t.Fatalf("got %v", m)
			}
		}},
		{"regular normal", MarshalRegular([]byte("env"), 3, ab.KafkaMessageRegular_NORMAL, 0), func(t *testing.T, m *ab.KafkaMessage) {
			r := m.GetRegular()
			if r == nil || string(r.Payload) != "env" || r.ConfigSeq != 3 || r.Class != ab.KafkaMessageRegular_NORMAL || r.OriginalOffset != 0 {
				t.Fatalf("got %v", m)
			}
		}},
		{"regular config resubmitted", MarshalRegular(big, 1<<40, ab.KafkaMessageRegular_CONFIG, 1234567), func(t *testing.T, m *ab.KafkaMessage) {
			r := m.GetRegular()
			if !bytes.Equal(r.GetPayload(), big) || r.ConfigSeq != 1<<40 || r.Class != ab.KafkaMessageRegular_CONFIG || r.OriginalOffset != 1234567 {
				t.Fatalf("round trip changed the message")
			}
		}},
		{"regular unknown class, empty payload", MarshalRegular(nil, 0, ab.KafkaMessageRegular_UNKNOWN, 0), func(t *testing.T, m *ab.KafkaMessage) {
			if m.GetRegular() == nil || m.GetRegular().Class != ab.KafkaMessageRegular_UNKNOWN {
				t.Fatalf("got %v", m)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if len(tc.value) == 0 && tc.name != "connect" {
				t.Fatal("marshal gave nothing")
			}
			m, err := Unmarshal(tc.value)
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, m)
			// What Fabric's orderer would write for the same message
			// decodes identically.
			again, err := proto.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			m2, err := Unmarshal(again)
			if err != nil || !proto.Equal(m, m2) {
				t.Fatalf("re-encoding differs: %v", err)
			}
		})
	}
}

func TestUnmarshalRejects(t *testing.T) {
	for _, tc := range []struct {
		name    string
		value   []byte
		unknown bool
	}{
		{"empty", nil, true},
		{"garbage", []byte{0xff, 0xff, 0xff}, false},
		{"truncated", MarshalRegular([]byte("envelope"), 1, ab.KafkaMessageRegular_NORMAL, 0)[:5], false},
		{"unknown field only", []byte{0x50, 0x01}, true}, // field 10, varint 1
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Unmarshal(tc.value)
			if err == nil {
				t.Fatalf("accepted: %v", m)
			}
			if got := errors.Is(err, ErrUnknownMessage); got != tc.unknown {
				t.Fatalf("ErrUnknownMessage = %v, want %v (%v)", got, tc.unknown, err)
			}
		})
	}
}

func FuzzUnmarshal(f *testing.F) {
	f.Add(MarshalConnect())
	f.Add(MarshalTimeToCut(7))
	f.Add(MarshalRegular([]byte("payload"), 2, ab.KafkaMessageRegular_CONFIG, 99))
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0x80})
	f.Fuzz(func(t *testing.T, value []byte) {
		m, err := Unmarshal(value)
		if err != nil {
			return
		}
		if m.Type == nil {
			t.Fatal("nil type without an error")
		}
		// Accepted values are usable without nil checks.
		_ = m.GetRegular().GetPayload()
		if _, err := proto.Marshal(m); err != nil {
			t.Fatalf("accepted message does not re-encode: %v", err)
		}
	})
}
