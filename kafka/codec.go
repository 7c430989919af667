package kafka

import (
	"errors"
	"fmt"

	"github.com/golang/protobuf/proto"
	ab "github.com/hyperledger/fabric-protos-go/orderer"
)

// RecordKey is the key of every record kord and Fabric write.
const RecordKey = "0"

// marshal cannot fail for the three message kinds built here (no required
// fields, no invalid UTF-8 in string fields: there are none), so its error
// is dropped rather than pushed onto every caller.
func marshal(m *ab.KafkaMessage) []byte {
	b, err := proto.Marshal(m)
	if err != nil {
		return nil
	}
	return b
}

// MarshalConnect encodes a CONNECT message, posted when a chain starts (and
// after a consumer error) to prove the topic is writable.
func MarshalConnect() []byte {
	return marshal(&ab.KafkaMessage{Type: &ab.KafkaMessage_Connect{Connect: &ab.KafkaMessageConnect{}}})
}

// MarshalTimeToCut encodes a TIME_TO_CUT message for block number block.
func MarshalTimeToCut(block uint64) []byte {
	return marshal(&ab.KafkaMessage{Type: &ab.KafkaMessage_TimeToCut{TimeToCut: &ab.KafkaMessageTimeToCut{BlockNumber: block}}})
}

// MarshalRegular encodes a REGULAR message carrying a marshalled envelope.
// originalOffset is 0 for a first submission and the offset of the first
// copy for a re-submission.
func MarshalRegular(envelope []byte, configSeq uint64, class ab.KafkaMessageRegular_Class, originalOffset int64) []byte {
	return marshal(&ab.KafkaMessage{Type: &ab.KafkaMessage_Regular{Regular: &ab.KafkaMessageRegular{
		Payload:        envelope,
		ConfigSeq:      configSeq,
		Class:          class,
		OriginalOffset: originalOffset,
	}}})
}

// ErrUnknownMessage is returned by Unmarshal for a well-formed KafkaMessage
// that carries none of the known kinds (empty, or a kind newer than this
// code).
var ErrUnknownMessage = errors.New("kafka message of unknown kind")

// Unmarshal decodes a record value. It returns an error, never panics, for
// values that are not a KafkaMessage or carry no known kind; the caller
// decides whether to skip such a record.
func Unmarshal(value []byte) (*ab.KafkaMessage, error) {
	m := new(ab.KafkaMessage)
	if err := proto.Unmarshal(value, m); err != nil {
		return nil, fmt.Errorf("kafka: decoding record value (%d bytes): %w", len(value), err)
	}
	switch t := m.Type.(type) {
	case *ab.KafkaMessage_Regular:
		if t.Regular == nil {
			t.Regular = &ab.KafkaMessageRegular{}
		}
	case *ab.KafkaMessage_TimeToCut:
		if t.TimeToCut == nil {
			t.TimeToCut = &ab.KafkaMessageTimeToCut{}
		}
	case *ab.KafkaMessage_Connect:
		if t.Connect == nil {
			t.Connect = &ab.KafkaMessageConnect{}
		}
	default:
		return nil, fmt.Errorf("kafka: decoding record value (%d bytes): %w", len(value), ErrUnknownMessage)
	}
	return m, nil
}
