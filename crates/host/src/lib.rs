//! # halo-host — the resource host
//!
//! halo's resource monitor (WSFC's RHS): a separate process, `halo host`, that loads resource
//! types and runs their entry points on worker threads, so that a resource that hangs or crashes
//! never takes the node daemon down, and the contract's asynchronous rules (serialization,
//! pending and PendingTimeout, health polling, DeadlockTimeout, lease) are enforced in one place.
//!
//! [`server`] is the process itself; [`client`] is the parent-side API the engine uses to start
//! hosts, send requests and receive facts, replacing a host that hangs or dies. [`protocol`] is
//! what travels between them.
//!
//! This crate must not decide policy (restart, failover, persistence): it reports facts and the
//! engine decides.

pub mod client;
pub mod properties;
pub mod protocol;
mod scheduler;
pub mod server;
