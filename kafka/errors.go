package kafka

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/IBM/sarama"
)

// Sentinel errors. Errors returned by this package wrap at most one of them
// next to the underlying cause, so errors.Is works for both.
var (
	// ErrUnavailable marks a failure that is expected to go away: brokers
	// unreachable, no leader, not enough replicas, timeouts.
	ErrUnavailable = errors.New("kafka unavailable")
	// ErrMessageTooLarge marks a message that the producer or the broker
	// will never accept, whatever the retries.
	ErrMessageTooLarge = errors.New("message too large")
	// ErrOffsetOutOfRange marks a request for an offset the partition does
	// not hold (removed by retention, or the topic was wiped).
	ErrOffsetOutOfRange = errors.New("offset out of range")
	// ErrClosed is returned by calls on a closed Producer or Consumer.
	ErrClosed = errors.New("kafka client closed")
)

// IsUnavailable reports whether err is a transient Kafka failure.
func IsUnavailable(err error) bool { return errors.Is(err, ErrUnavailable) }

// IsMessageTooLarge reports whether err says a message exceeds the producer's
// or the broker's size limit.
func IsMessageTooLarge(err error) bool {
	return errors.Is(err, ErrMessageTooLarge) || errors.Is(err, sarama.ErrMessageSizeTooLarge) ||
		errors.Is(err, sarama.ErrMessageSetSizeTooLarge)
}

// IsOffsetOutOfRange reports whether err says an offset does not exist in
// the partition any more (or not yet).
func IsOffsetOutOfRange(err error) bool {
	return errors.Is(err, ErrOffsetOutOfRange) || errors.Is(err, sarama.ErrOffsetOutOfRange)
}

type nonRetriable struct{ err error }

func (e nonRetriable) Error() string { return e.err.Error() }
func (e nonRetriable) Unwrap() error { return e.err }

// NonRetriable marks err so that Retry gives up on it at once. It returns nil
// for nil.
func NonRetriable(err error) error {
	if err == nil || IsNonRetriable(err) {
		return err
	}
	return nonRetriable{err: err}
}

// IsNonRetriable reports whether err, or an error it wraps, was marked by
// NonRetriable.
func IsNonRetriable(err error) bool {
	var nr nonRetriable
	return errors.As(err, &nr)
}

// fatalKErrors are broker answers that no amount of retrying changes: the
// request itself, the client's rights or the cluster's shape is wrong.
var fatalKErrors = map[sarama.KError]bool{
	sarama.ErrInvalidMessage:                     true,
	sarama.ErrInvalidTopic:                       true,
	sarama.ErrInvalidRequiredAcks:                true,
	sarama.ErrTopicAuthorizationFailed:           true,
	sarama.ErrClusterAuthorizationFailed:         true,
	sarama.ErrUnsupportedVersion:                 true,
	sarama.ErrInvalidPartitions:                  true,
	sarama.ErrInvalidReplicationFactor:           true,
	sarama.ErrInvalidReplicaAssignment:           true,
	sarama.ErrInvalidConfig:                      true,
	sarama.ErrPolicyViolation:                    true,
	sarama.ErrInvalidRequest:                     true,
	sarama.ErrUnsupportedForMessageFormat:        true,
	sarama.ErrSASLAuthenticationFailed:           true,
	sarama.ErrUnsupportedSASLMechanism:           true,
	sarama.ErrIllegalSASLState:                   true,
	sarama.ErrInvalidRecord:                      true,
	sarama.ErrUnsupportedCompressionType:         true,
	sarama.ErrInvalidTimestamp:                   true,
	sarama.ErrTransactionalIDAuthorizationFailed: true,
}

// classify wraps err with the sentinel that describes it, and op as context.
// Errors that are neither too large, out of range, nor known to be permanent
// count as unavailable: for an orderer every other produce or fetch failure
// means "try again later".
func classify(op string, err error) error {
	if err == nil {
		return nil
	}
	switch {
	case errors.Is(err, ErrUnavailable), errors.Is(err, ErrMessageTooLarge),
		errors.Is(err, ErrOffsetOutOfRange), errors.Is(err, ErrClosed), errors.Is(err, ErrAuthentication):
		return fmt.Errorf("%s: %w", op, err)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s: %w", op, err)
	case IsMessageTooLarge(err) || isClientSizeError(err):
		return fmt.Errorf("%s: %w: %w", op, ErrMessageTooLarge, err)
	case errors.Is(err, sarama.ErrOffsetOutOfRange):
		return fmt.Errorf("%s: %w: %w", op, ErrOffsetOutOfRange, err)
	case isPermanent(err):
		return fmt.Errorf("%s: %w", op, err)
	default:
		return fmt.Errorf("%s: %w: %w", op, ErrUnavailable, err)
	}
}

func isClientSizeError(err error) bool {
	var ce sarama.ConfigurationError
	return errors.As(err, &ce) && strings.Contains(string(ce), "MaxMessageBytes")
}

func isPermanent(err error) bool {
	var ke sarama.KError
	if errors.As(err, &ke) {
		return fatalKErrors[ke]
	}
	var ce sarama.ConfigurationError
	return errors.As(err, &ce)
}

// IsUnknownTopic reports whether err says the topic (or its partition) does not exist.
func IsUnknownTopic(err error) bool { return errors.Is(err, sarama.ErrUnknownTopicOrPartition) }
