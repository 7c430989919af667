package chainverify

import (
	"errors"
	"fmt"

	cb "github.com/hyperledger/fabric-protos-go/common"

	"github.com/kordhq/kord/orderer/channelconfig"
	"github.com/kordhq/kord/orderer/policy"
)

// BlockValidationPath is the policy a peer evaluates on the signatures of every block it
// receives from an orderer.
const BlockValidationPath = "/Channel/Orderer/BlockValidation"

// BlockValidation is the default SignatureCheck: the signatures must satisfy the channel's
// /Channel/Orderer/BlockValidation policy of the config in force, evaluated with that
// config's MSPs (Fabric's default is ANY Writers of the orderer organizations). As for a peer,
// identities are validated against their MSP's CAs and revocation lists but not against
// expiry, so old chains signed by since-expired certificates still verify.
func BlockValidation(cfg *channelconfig.Values, _ *cb.Block, sigs []*policy.SignedData) error {
	if len(sigs) == 0 {
		return errors.New("the block carries no signature")
	}
	if cfg.Policies == nil {
		return fmt.Errorf("the channel config has no policies to check %s", BlockValidationPath)
	}
	p, ok := cfg.Policies.GetPolicy(BlockValidationPath)
	if !ok {
		return fmt.Errorf("the channel config has no %s policy", BlockValidationPath)
	}
	if err := p.EvaluateSignedData(sigs); err != nil {
		return fmt.Errorf("%s not satisfied: %w", BlockValidationPath, err)
	}
	return nil
}
