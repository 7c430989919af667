// Package loadgen drives a Fabric ordering service (kord or Fabric's own orderer) with
// Broadcast load and measures what comes out of Deliver. It is the engine of `kordctl bench`.
//
// The model of one run:
//
//   - Prepare. Every envelope is a properly signed ENDORSER_TRANSACTION (channel header with
//     a transaction ID derived from nonce and creator, signature header with creator and
//     nonce, Size random bytes of payload data), so any orderer's filters accept it. By
//     default all Count envelopes are built and signed before the clock starts, on every
//     core; with SignOnTheFly each stream signs its envelopes as it sends them, and the
//     signing cost is part of the run. Prepared envelopes are held in memory until sent (about
//     Size+700 bytes each), so a long run should sign on the fly: its memory then stays flat.
//   - Deliver follower. Before the clock starts, one Deliver stream seeks the channel's newest
//     block (so an existing chain is not replayed) and follows the chain; the run starts once
//     that block has arrived.
//   - Streams. Streams Broadcast streams, each on its own connection, take envelopes from one
//     shared sequence, so a slow stream does not hold the others back. Each stream pipelines
//     as Fabric's clients may: one goroutine sends, another reads the in-order responses and
//     pairs each with the oldest unanswered envelope (at most MaxInFlight per stream).
//     Responses other than SUCCESS are counted by status. With Rate, envelope k of the run
//     is due at start + k/Rate whichever stream sends it: an open-loop offered load; a stream
//     that falls behind sends at once.
//   - Matching. The send time of every envelope is kept under its transaction ID until the
//     envelope is delivered or refused; the follower reads the channel header of each
//     envelope of each block (without unmarshalling the data) and matches it. Matched
//     entries are dropped, so memory follows the envelopes in flight, not the length of the
//     run. Envelopes of followed blocks this run did not send (other clients, or a duplicate)
//     are counted as foreign.
//   - Latency. Send→acknowledgement and send→delivery times go into fixed-size log-linear
//     histograms (1.6% resolution) from which p50/p95/p99 are read.
//   - End. Sending stops at Count envelopes or after Duration, whichever comes first; the run
//     then waits for the outstanding responses and, with the follower, until every
//     acknowledged envelope has been delivered or no block has come for DrainTimeout.
//
// The Report holds the counts, the rates (acknowledged/s over the time to the last
// acknowledgement, delivered/s over the time to the last delivery), the percentiles, the
// blocks that carried this run's envelopes and their mean number of envelopes.
package loadgen
