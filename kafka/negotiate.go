package kafka

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/IBM/sarama"
)

// APIRange is the span of versions a broker accepts for one request kind.
type APIRange struct{ Min, Max int16 }

// Request kinds whose versions decide whether a sarama version can talk to a
// broker: the only ones this package sends.
const (
	apiProduce      int16 = 0
	apiFetch        int16 = 1
	apiListOffsets  int16 = 2
	apiMetadata     int16 = 3
	apiCreateTopics int16 = 19
)

var apiNames = map[int16]string{
	apiProduce: "Produce", apiFetch: "Fetch", apiListOffsets: "ListOffsets",
	apiMetadata: "Metadata", apiCreateTopics: "CreateTopics",
}

// requestVersions gives, for a sarama version, the request version sarama
// sends for each kind that matters here. sarama exports constructors for some
// kinds; for produce and fetch the choice is internal, and the steps below
// mirror the releases at which sarama moves them (checked against sarama
// v1.61 by TestRequestVersionsMatchSarama where observable).
func requestVersions(v sarama.KafkaVersion) map[int16]int16 {
	return map[int16]int16{
		apiProduce:      produceVersion(v),
		apiFetch:        fetchVersion(v),
		apiListOffsets:  sarama.NewOffsetRequest(v).Version,
		apiMetadata:     sarama.NewMetadataRequest(v, nil).Version,
		apiCreateTopics: sarama.NewCreateTopicsRequest(v, nil, 0, false).Version,
	}
}

type step struct {
	from sarama.KafkaVersion
	req  int16
}

func pick(v sarama.KafkaVersion, steps []step) int16 {
	var out int16
	for _, s := range steps {
		if v.IsAtLeast(s.from) {
			out = s.req
		}
	}
	return out
}

var produceSteps = []step{
	{sarama.V0_10_0_0, 2}, {sarama.V0_11_0_0, 3}, {sarama.V1_0_0_0, 5}, {sarama.V2_0_0_0, 6},
	{sarama.V2_1_0_0, 7}, {sarama.V2_4_0_0, 8}, {sarama.V2_8_0_0, 9}, {sarama.V3_7_0_0, 10},
}

var fetchSteps = []step{
	{sarama.V0_9_0_0, 1}, {sarama.V0_10_0_0, 2}, {sarama.V0_10_1_0, 3}, {sarama.V0_11_0_0, 5},
	{sarama.V1_0_0_0, 6}, {sarama.V1_1_0_0, 7}, {sarama.V2_0_0_0, 8}, {sarama.V2_1_0_0, 10},
	{sarama.V2_3_0_0, 11}, {sarama.V2_7_0_0, 12},
}

func produceVersion(v sarama.KafkaVersion) int16 { return pick(v, produceSteps) }
func fetchVersion(v sarama.KafkaVersion) int16   { return pick(v, fetchSteps) }

// ParseVersion parses a Kafka version as written in Fabric's configuration
// ("0.10.2.0", "1.0.0", "2.8.1"). The error names the value.
func ParseVersion(s string) (sarama.KafkaVersion, error) {
	v, err := sarama.ParseKafkaVersion(strings.TrimSpace(s))
	if err != nil {
		return sarama.KafkaVersion{}, NonRetriable(fmt.Errorf("kafka: invalid Kafka.Version %q (want e.g. 0.10.2.0 or 2.8.1): %w", s, err))
	}
	return v, nil
}

// Negotiate picks the sarama protocol version to use: it parses o.Version,
// asks the first reachable broker which request versions it accepts
// (ApiVersions), and returns the result of ChooseVersion. The decision is
// logged when it differs from the configured version.
func Negotiate(ctx context.Context, o Options) (sarama.KafkaVersion, error) {
	o = o.withDefaults()
	if err := o.validate(); err != nil {
		return sarama.KafkaVersion{}, err
	}
	configured, err := ParseVersion(o.Version)
	if err != nil {
		return sarama.KafkaVersion{}, err
	}
	ranges, addr, err := probeAPIVersions(ctx, o)
	if err != nil {
		return sarama.KafkaVersion{}, err
	}
	chosen, reason, err := ChooseVersion(configured, ranges)
	if err != nil {
		return sarama.KafkaVersion{}, fmt.Errorf("kafka: broker %s: %w", addr, err)
	}
	key := strings.Join(o.Brokers, ",") + "|" + configured.String() + "|" + chosen.String()
	if _, seen := loggedDecisions.LoadOrStore(key, true); chosen != configured && !seen {
		o.Logger.Warn("kafka protocol version adjusted to what the broker supports",
			"configured", configured.String(), "using", chosen.String(), "broker", addr, "reason", reason)
	} else {
		o.Logger.Debug("kafka protocol version accepted by broker", "version", chosen.String(), "broker", addr)
	}
	return chosen, nil
}

// loggedDecisions keeps the version warning to once per broker set and
// outcome: every producer, consumer and topic creation negotiates.
var loggedDecisions sync.Map

// ChooseVersion decides the protocol version for a broker that accepts
// ranges. A version "fits" when every request kind this package sends at
// that version is one the broker accepts (sarama lowers a request to the
// broker's maximum on its own, but never raises it to the broker's minimum),
// and it is "within capabilities" when no request kind goes past the broker's
// maximum (the version also switches record formats, which must not outrun
// the broker).
//
//   - configured fits and is within capabilities: keep it;
//   - configured is too old for the broker: take the oldest newer version
//     that fits and is within capabilities, preferring 1.0.0 or later;
//   - configured is too new for the broker: take the newest older version
//     that fits and is within capabilities, else keep configured.
func ChooseVersion(configured sarama.KafkaVersion, ranges map[int16]APIRange) (sarama.KafkaVersion, string, error) {
	versions := slices.Clone(sarama.SupportedVersions)
	sort.Slice(versions, func(i, j int) bool { return !versions[i].IsAtLeast(versions[j]) })

	fits := func(v sarama.KafkaVersion) error {
		for key, rv := range requestVersions(v) {
			r, ok := ranges[key]
			if !ok {
				return fmt.Errorf("broker does not support %s requests", apiNames[key])
			}
			if rv < r.Min {
				return fmt.Errorf("%s v%d is below the broker's minimum v%d", apiNames[key], rv, r.Min)
			}
		}
		return nil
	}
	capable := func(v sarama.KafkaVersion) bool {
		for key, rv := range requestVersions(v) {
			if r, ok := ranges[key]; ok && rv > r.Max {
				return false
			}
		}
		return true
	}
	good := func(v sarama.KafkaVersion) bool { return fits(v) == nil && capable(v) }

	fitErr := fits(configured)
	if fitErr == nil && capable(configured) {
		return configured, "", nil
	}
	if fitErr != nil {
		var first sarama.KafkaVersion
		var found bool
		for _, v := range versions {
			if !v.IsAtLeast(configured) || v == configured || !good(v) {
				continue
			}
			if !found {
				first, found = v, true
			}
			if v.IsAtLeast(sarama.V1_0_0_0) {
				return v, fmt.Sprintf("configured version too old: %v", fitErr), nil
			}
		}
		if found {
			return first, fmt.Sprintf("configured version too old: %v", fitErr), nil
		}
		return sarama.KafkaVersion{}, "", NonRetriable(fmt.Errorf("no protocol version known to this client is accepted by the broker (configured %s: %w)", configured, fitErr))
	}
	for i := len(versions) - 1; i >= 0; i-- {
		v := versions[i]
		if configured.IsAtLeast(v) && v != configured && good(v) {
			return v, "configured version newer than the broker supports", nil
		}
	}
	return configured, "", nil
}

// probeAPIVersions asks the brokers, in order, for their ApiVersions and
// returns the first answer.
func probeAPIVersions(ctx context.Context, o Options) (map[int16]APIRange, string, error) {
	conf, err := baseConfig(o)
	if err != nil {
		return nil, "", err
	}
	// ApiVersions v0 exists since Kafka 0.10.0 and is still accepted by
	// Kafka 4, before authentication too; no SASL is needed for it.
	conf.Version = sarama.V0_10_0_0
	conf.ApiVersionsRequest = false
	conf.Net.SASL.Enable = false
	useCtxDialer(ctx, conf)

	var errs []error
	for _, addr := range o.Brokers {
		if err := ctx.Err(); err != nil {
			return nil, "", fmt.Errorf("kafka: asking brokers for ApiVersions: %w", err)
		}
		ranges, err := probeOne(conf, addr)
		if err == nil {
			return ranges, addr, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", addr, err))
	}
	if err := ctx.Err(); err != nil {
		return nil, "", fmt.Errorf("kafka: asking brokers for ApiVersions: %w", err)
	}
	return nil, "", fmt.Errorf("kafka: asking brokers for ApiVersions: %w: %w", ErrUnavailable, errors.Join(errs...))
}

func probeOne(conf *sarama.Config, addr string) (map[int16]APIRange, error) {
	b := sarama.NewBroker(addr)
	if err := b.Open(conf); err != nil {
		return nil, err
	}
	defer func() { _ = b.Close() }()
	if ok, err := b.Connected(); err != nil || !ok {
		return nil, errors.Join(errors.New("not connected"), err)
	}
	resp, err := b.ApiVersions(&sarama.ApiVersionsRequest{Version: 0})
	if err != nil {
		return nil, err
	}
	if resp.ErrorCode != 0 {
		return nil, fmt.Errorf("ApiVersions answered %w", sarama.KError(resp.ErrorCode))
	}
	ranges := make(map[int16]APIRange, len(resp.ApiKeys))
	for _, k := range resp.ApiKeys {
		ranges[k.ApiKey] = APIRange{Min: k.MinVersion, Max: k.MaxVersion}
	}
	return ranges, nil
}
