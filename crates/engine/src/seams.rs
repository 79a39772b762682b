//! The seams the driver executes through, so that the same core and driver run against real
//! host processes or a model of them.

use halo_host::client::{ControlReply, HostError, HostManager, OpenSpec};
use halo_host::protocol::{ResourceId, Timeouts};
use resapi::PropertyList;
use std::future::Future;
use std::time::Duration;

/// The resource hosts: where resource code runs. Facts come back on a channel the implementer
/// hands to the driver (for [`HostManager`], the one `HostManager::new` returns).
pub trait Hosts: Clone + Send + Sync + 'static {
    /// Opens a resource in a host; resolves when the host answered.
    fn open(&self, spec: OpenSpec) -> impl Future<Output = Result<(), HostError>> + Send;
    /// OnlineV2; the outcome arrives as facts.
    fn online(&self, id: ResourceId, flags: u32, input: Vec<u8>) -> Result<(), HostError>;
    /// OfflineV2 with a move's destination node; the outcome arrives as facts.
    fn offline(&self, id: ResourceId, destination: Option<String>, flags: u32, input: Vec<u8>)
    -> Result<(), HostError>;
    /// Terminate.
    fn terminate(&self, id: ResourceId) -> Result<(), HostError>;
    /// New private properties and timeouts.
    fn update(&self, id: ResourceId, properties: &PropertyList, timeouts: Timeouts) -> Result<(), HostError>;
    /// Close.
    fn close(&self, id: ResourceId) -> Result<(), HostError>;
    /// ResourceControl; resolves with the answer.
    fn control(
        &self,
        id: ResourceId,
        code: u32,
        input: Vec<u8>,
        output_size: u32,
    ) -> impl Future<Output = Result<ControlReply, HostError>> + Send;
    /// Renews the hosts' lease: past it without a renewal they stop every resource.
    fn renew_lease(&self, duration: Duration);
}

impl Hosts for HostManager {
    fn open(&self, spec: OpenSpec) -> impl Future<Output = Result<(), HostError>> + Send {
        let me = self.clone();
        async move { HostManager::open(&me, spec).await }
    }
    fn online(&self, id: ResourceId, flags: u32, input: Vec<u8>) -> Result<(), HostError> {
        HostManager::online(self, id, flags, input)
    }
    fn offline(
        &self,
        id: ResourceId,
        destination: Option<String>,
        flags: u32,
        input: Vec<u8>,
    ) -> Result<(), HostError> {
        HostManager::offline(self, id, destination, flags, input)
    }
    fn terminate(&self, id: ResourceId) -> Result<(), HostError> {
        HostManager::terminate(self, id)
    }
    fn update(&self, id: ResourceId, properties: &PropertyList, timeouts: Timeouts) -> Result<(), HostError> {
        HostManager::update(self, id, properties, timeouts)
    }
    fn close(&self, id: ResourceId) -> Result<(), HostError> {
        HostManager::close(self, id)
    }
    fn control(
        &self,
        id: ResourceId,
        code: u32,
        input: Vec<u8>,
        output_size: u32,
    ) -> impl Future<Output = Result<ControlReply, HostError>> + Send {
        let me = self.clone();
        async move { HostManager::control(&me, id, code, input, output_size).await }
    }
    fn renew_lease(&self, duration: Duration) {
        HostManager::renew_lease(self, duration)
    }
}

/// Monotonic time for the core. Under tokio's paused clock (tests, simulation) it is virtual.
pub trait Clock: Send + Sync + 'static {
    /// Time since the clock's origin.
    fn now(&self) -> Duration;
    /// The tokio instant of a core time, for the driver's timer.
    fn deadline(&self, at: Duration) -> tokio::time::Instant;
}

/// The clock of the tokio runtime the driver runs on.
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    origin: tokio::time::Instant,
}

impl TokioClock {
    /// A clock whose origin is now.
    pub fn new() -> Self {
        TokioClock { origin: tokio::time::Instant::now() }
    }
}

impl Default for TokioClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for TokioClock {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }
    fn deadline(&self, at: Duration) -> tokio::time::Instant {
        self.origin + at
    }
}
