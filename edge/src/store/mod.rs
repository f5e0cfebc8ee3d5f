//! The edge's embedded store.

pub mod redb;

pub use self::redb::RedbStore;
