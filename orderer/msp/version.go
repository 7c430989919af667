package msp

import "fmt"

// Version selects which generation of Fabric's X.509 MSP rules applies. Fabric derives it
// from the channel capabilities, and the rules differ in ways that change policy outcomes
// (which node OUs exist, how admins are recognised, whether COMBINED principals are
// understood), so a channel must be evaluated with the version its capabilities select.
type Version int

const (
	// V1_0 is the original MSP: root/intermediate CAs, explicit admins, CRLs and OU
	// identifiers; NodeOUs are ignored.
	V1_0 Version = iota
	// V1_1 adds NodeOUs with client and peer classification.
	V1_1
	// V1_3 adds COMBINED and ANONYMITY principals.
	V1_3
	// V1_4_3 adds the admin and orderer node OUs; admins may be recognised by OU.
	V1_4_3
)

// LatestVersion is the version Fabric v2.5 uses for local MSPs and for channels with the
// V1_4_3 or V2_0 channel capability.
const LatestVersion = V1_4_3

func (v Version) String() string {
	switch v {
	case V1_0:
		return "v1.0"
	case V1_1:
		return "v1.1"
	case V1_3:
		return "v1.3"
	case V1_4_3:
		return "v1.4.3"
	}
	return fmt.Sprintf("Version(%d)", int(v))
}

// Channel capability names that select an MSP version.
const (
	capV1_1   = "V1_1"
	capV1_3   = "V1_3"
	capV1_4_2 = "V1_4_2"
	capV1_4_3 = "V1_4_3"
	capV2_0   = "V2_0"
)

// VersionForCapabilities returns the MSP version Fabric v2.5 selects for a channel whose
// /Channel Capabilities value enables the named capabilities. V1_4_2 maps to V1_3, not to
// V1_4_3: the NodeOU admin/orderer rules arrived with the V1_4_3 capability.
func VersionForCapabilities(channelCapabilities map[string]bool) Version {
	switch {
	case channelCapabilities[capV2_0] || channelCapabilities[capV1_4_3]:
		return V1_4_3
	case channelCapabilities[capV1_4_2] || channelCapabilities[capV1_3]:
		return V1_3
	case channelCapabilities[capV1_1]:
		return V1_1
	}
	return V1_0
}
