package deliver

import cb "github.com/hyperledger/fabric-protos-go/common"

// Metrics is told what Deliver streams do (the orderer implements it with Fabric's deliver_*
// metrics). A request is counted once its channel is known, as in Fabric.
type Metrics interface {
	StreamOpened()
	StreamClosed()
	RequestReceived(channel string)
	RequestCompleted(channel string, status cb.Status)
	BlockSent(channel string)
}
