//! The root crate's integration tests, in one binary: `cargo test -p idverify --test api`
//! (a module's tests alone: `cargo test -p idverify --test api faults::`).
//!
//! Tests run in parallel inside this binary, so none changes process-wide state: each `TestApp`
//! has its own directory, store and organization, configuration comes in through `Options` (never
//! `std::env::set_var`), and the one test that needs a global log subscriber (`logs`) runs in a
//! child process of its own.

mod common;

mod bench;
mod billing;
mod contract;
mod database_tls;
mod faults;
mod idempotency;
mod logs;
mod openapi;
mod probes;
mod proptest_inputs;
mod s3;
mod server;
mod shutdown;
