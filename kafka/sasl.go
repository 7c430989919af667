package kafka

import (
	"context"
	"errors"
	"fmt"

	"github.com/IBM/sarama"
)

// ErrAuthentication marks a connection refused because of the client's SASL credentials.
var ErrAuthentication = errors.New("SASL authentication failed")

// explainConnectError names SASL as the cause of a failed connection when it is: a broker
// that refuses the credentials says so (Kafka), or simply drops the connection (some brokers,
// kfake), which sarama reports as "run out of available brokers: EOF". In the second case the
// brokers are probed without SASL: if they answer, the credentials are what failed. Such an
// error is marked NonRetriable, since retrying with the same credentials cannot succeed.
func explainConnectError(ctx context.Context, addrs []string, conf *sarama.Config, err error) error {
	if err == nil || !conf.Net.SASL.Enable || ctx.Err() != nil {
		return err
	}
	user := conf.Net.SASL.User
	if errors.Is(err, sarama.ErrSASLAuthenticationFailed) {
		return NonRetriable(fmt.Errorf("kafka: SASL/PLAIN authentication as user %q refused by the brokers (check Kafka.SASLPlain.User and Kafka.SASLPlain.Password): %w: %w", user, ErrAuthentication, err))
	}
	probe := *conf
	probe.Version = sarama.V0_10_0_0
	probe.ApiVersionsRequest = false
	probe.Net.SASL.Enable = false
	probe.Producer.Idempotent = false // needs 0.11+; the probe speaks 0.10
	useCtxDialer(ctx, &probe)
	for _, addr := range addrs {
		if _, perr := probeOne(&probe, addr); perr == nil {
			return NonRetriable(fmt.Errorf("kafka: broker %s answers without authentication but drops the connection during SASL/PLAIN authentication as user %q (check Kafka.SASLPlain.User and Kafka.SASLPlain.Password): %w: %w", addr, user, ErrAuthentication, err))
		}
	}
	return err
}
