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
//	'b' + uint64 big-endian n       -> proto.Marshal(*cb.Block) of block n
//	'b' + uint64 big-endian n + 'h' -> uint64 big-endian n+1: a height marker,
//	                                   written by the Append that ended with block n
//	'v'                             -> format version (currently 2), written
//	                                   when the store is created
//
// Block keys are fixed width and big-endian so that LevelDB's byte ordering
// equals block-number ordering, which makes range scans (Verify) sequential.
// The stored value is the exact golang/protobuf encoding of the block, so
// RawBlock can hand it to a Deliver stream without decoding and re-encoding.
//
// The last height marker, not the set of block keys, is authoritative: a
// block is part of the chain if and only if its number is below the height
// that marker records. Every Append writes all of its blocks together with its
// marker in a single synced LevelDB batch, so a crash leaves either all or
// none of an Append on disk. Block keys after the last marker can only come
// from a foreign or non-atomic writer; they are ignored and later overwritten.
// A block key missing below the height is corruption and is reported as
// ErrCorrupt, naming the channel and block.
//
// Why markers rather than one height key: every key an Append writes sorts
// after every key written before it, so each table goleveldb flushes covers
// a key range no other table touches and its compactions move tables down
// the levels without rewriting them. The version key, which sorts after all
// blocks, is flushed into a table of its own when the store is created for
// the same reason. Format 1 kept the height in one key after all blocks
// ('h'); that key made every flushed table overlap all older ones, and
// goleveldb rewrote the whole of level 1 at every level-0 compaction, about
// as many bytes again as the blocks themselves. A format-1 store is upgraded
// in place, in one synced batch, when it is opened; the version key stays
// where format 1 kept it, so a format-1 reader refuses a format-2 store
// (unsupported version) instead of taking its chain for empty.
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
