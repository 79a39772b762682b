//! # halo-engine — resources and groups on one node
//!
//! The engine owns the objects (resource types, groups, resources and their properties and
//! dependencies, kept in the cluster database), each resource's runtime state, and the policy
//! that moves it: online bottom-up and offline top-down along dependencies, in parallel where the
//! graph allows; restart with RestartDelay / RestartThreshold / RestartPeriod / RestartAction /
//! RetryPeriodOnFailure; PersistentState; an event stream of every change.
//!
//! It is split in two (see `docs/architecture.md`): [`core`] decides — pure code, `step(now,
//! input) -> Ready`, no tokio, no I/O, no clock — and [`driver`] does: one loop that feeds the
//! core host facts, commands, the database's change feed and timer expiries, and executes what
//! it decides through the [`seams`]. The engine drives resource code only through the `Hosts`
//! seam and stores only through the cluster database; it must not reach around either.

pub mod core;
pub mod deps;
pub mod driver;
pub mod events;
pub mod model;
pub mod placement;
pub mod seams;

pub use core::{ControlOutput, Desired, GroupView, OpStatus, ResourceView};
pub use driver::Engine;
pub use halo_cluster::NodeRecord;
pub use model::EngineError;
