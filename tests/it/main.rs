//! The integration tests, in one binary (`cargo test --test it`): one link of the crate and its
//! dev-dependencies instead of one per file. A module per area; helpers that more than one area
//! needs live in `support`.

mod support;

mod billing;
mod ci;
mod cli;
mod examples;
mod job_files;
mod progress;
mod properties;
mod readme;
mod report_files;
mod schema;
