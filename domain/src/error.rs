//! The shared kind of a rejected command.

use serde::{Deserialize, Serialize};

/// Why the domain refused a command, independent of the aggregate that refused it.
///
/// Every aggregate error has a `kind()` returning one of these. Transports map them to their
/// own vocabulary (over HTTP: 404, 409 and 422).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rejection {
    /// The aggregate the command addresses does not exist yet (e.g. an account that was never
    /// registered).
    NotFound,
    /// The command clashes with the aggregate's current state (e.g. already registered, a state
    /// that already changed, a duplicate reservation or charge).
    Conflict,
    /// The command is well-formed but cannot be carried out (e.g. a non-positive amount, a
    /// currency mismatch, a deleted account).
    Unprocessable,
}

impl Rejection {
    /// A stable lower-case name: `not_found`, `conflict` or `unprocessable`.
    pub fn as_str(self) -> &'static str {
        match self {
            Rejection::NotFound => "not_found",
            Rejection::Conflict => "conflict",
            Rejection::Unprocessable => "unprocessable",
        }
    }
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
