package kafka

import (
	"testing"
	"time"

	"github.com/kordhq/kord/kafka/embedded"
)

func TestSASLPlain(t *testing.T) {
	cfg := embedded.Config{}
	cfg.SASLPlain.User, cfg.SASLPlain.Password = "orderer", "s3cret"
	c := startCluster(t, cfg)
	ctx := testCtx(t, 20*time.Second)
	o := testOptions(c.Addrs())
	o.Version = "0.10.2.0"
	o.SASL = SASLOptions{Enabled: true, User: "orderer", Password: "s3cret"}
	mustEnsure(t, ctx, o, "secured", 1)
	p := mustProducer(t, ctx, o)
	if _, err := p.Produce(ctx, "secured", MarshalConnect()); err != nil {
		t.Fatal(err)
	}

	o.SASL.Password = "wrong"
	start := time.Now()
	_, err := NewProducer(ctx, o)
	if err == nil {
		t.Fatal("wrong password accepted")
	}
	t.Logf("wrong password after %s: %v", time.Since(start).Round(time.Millisecond), err)
}
