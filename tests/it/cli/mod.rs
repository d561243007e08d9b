//! End-to-end tests: the real binary against the built-in sandbox on loopback.

mod bad_input;
mod discovery;
mod doctor;
mod faults;
mod happy_path;
mod history;
mod hostile;
mod http2;
mod resume;
mod shard_merge;
mod trail;
