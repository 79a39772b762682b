//! # halo-engine — resources and groups on one node
//!
//! The engine owns the objects (resource types, groups, resources and their properties and
//! dependencies, kept in the cluster database), each resource's runtime state, and the policy
//! that moves it: online bottom-up and offline top-down along dependencies, in parallel where the
//! graph allows; restart with RestartDelay / RestartThreshold / RestartPeriod / RestartAction /
//! RetryPeriodOnFailure; PersistentState; an event stream of every change.
//!
//! It drives resource code only through the host manager and stores only through the cluster
//! database; it must not reach around either.

pub mod deps;
mod engine;
pub mod events;
pub mod model;

pub use engine::{ControlOutput, Desired, Engine, GroupView, OpStatus, ResourceView};
pub use model::EngineError;
