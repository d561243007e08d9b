//! acronis-reports: declarative, verified billing reports from the Acronis Cyber Protect Cloud API.
//!
//! Data flows one way: [`job`] (the file) → [`plan`] (one request per tenant × period) →
//! [`run`] (create, [`poll`], [`download`], [`checks`] through the [`api`] client; started and
//! aimed by the [`history`] of earlier periods) →
//! [`results`] → [`output`] writers. [`session`] does one `run` command through all of them.

#![warn(missing_docs)]

pub mod api;
pub mod billing;
pub mod checks;
pub mod ci;
pub mod content;
mod direct_io;
pub(crate) mod discover;
pub mod disk;
pub mod doctor;
pub(crate) mod download;
pub mod duration;
pub mod history;
pub mod job;
pub mod merge;
pub mod output;
pub mod period;
pub mod plan;
pub(crate) mod poll;
pub mod report;
pub mod results;
pub mod retry;
pub mod run;
pub mod secret;
pub mod session;
pub mod shard;
pub(crate) mod state;
pub mod verify;
