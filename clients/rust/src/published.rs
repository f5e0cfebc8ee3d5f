//! The outcome of a publish.

/// The outcome of a publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Published {
    /// Stored and handed to delivery as `seq`.
    Stored { seq: u64 },
    /// A function dropped it: nobody receives it.
    Dropped { reason: Option<String> },
}
