// Package ledger owns the on-disk block chains of the ordering service: one
// append-only sequence of blocks per channel, stored in its own goleveldb
// database, and the wake-up mechanism that lets Deliver streams follow the
// tip of a chain without polling.
//
// # On-disk model
//
// A Provider owns a root directory. Each channel's database lives in
// <root>/chains/<channelID>/ and holds exactly three kinds of keys:
//
//	'b' + uint64 big-endian block number -> proto.Marshal(*cb.Block)
//	'h'                                  -> uint64 big-endian height
//	'v'                                  -> format version (currently 1),
//	                                        written with the first Append
//
// Block keys are fixed width and big-endian so that LevelDB's byte ordering
// equals block-number ordering, which makes range scans (Verify) sequential.
// The stored value is the exact golang/protobuf encoding of the block, so
// RawBlock can hand it to a Deliver stream without decoding and re-encoding.
//
// The height key, not the set of block keys, is authoritative: a block is
// part of the chain if and only if its number is below the stored height.
// Every Append writes all of its blocks together with the new height in a
// single synced LevelDB batch, so a crash leaves either all or none of an
// Append on disk. Block keys at or above the height can only come from a
// foreign or non-atomic writer; they are ignored and later overwritten. A
// block key missing below the height is corruption and is reported as
// ErrCorrupt, naming the channel and block.
//
// # Crash safety and LevelDB strictness
//
// The databases are opened with goleveldb's default strict flags, spelled out
// explicitly: journal and table checksums are verified, and a corrupt table
// fails reads rather than silently skipping entries (StrictReader). StrictJournal
// is deliberately not set: a crash in the middle of an unacknowledged synced
// write leaves a torn record at the tail of the journal, and with
// StrictJournal the database would refuse to open after an ordinary crash.
// Without it the torn record is dropped as a whole, which, because one Append
// is one record, is the same as that Append never having happened.
// StrictManifest stays off for the same reason: goleveldb records a new table
// layout in the manifest before deleting the files it replaces, so dropping a
// torn final manifest record falls back to a layout that is still on disk.
//
// leveldb.RecoverFile is never called automatically: it rebuilds the manifest
// from whatever tables survive and can silently forget blocks, which for a
// ledger must be an operator decision, not a side effect of opening.
package ledger
