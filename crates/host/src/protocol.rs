//! The framed, versioned protocol between the node daemon (parent) and a host process.
//!
//! A frame is a little-endian `u32` length followed by that many bytes of JSON. The first frame
//! each way is `Hello` with [`PROTOCOL_VERSION`]; a peer speaking another version is refused.
//! Requests flow down ([`ToHost`]); facts flow up ([`FromHost`]).

use serde::{Deserialize, Serialize};
use std::io::{self, Read, Write};

/// The protocol version both sides must speak.
pub const PROTOCOL_VERSION: u32 = 1;

/// How often a host says it is alive.
pub const HEARTBEAT_MS: u64 = 1000;

/// The largest frame either side accepts; a longer one is a protocol error, not an allocation.
pub const MAX_FRAME: usize = 16 * 1024 * 1024;

/// A resource's id, chosen by the parent and unique within a node.
pub type ResourceId = u64;

/// Timing properties the host enforces for one resource, in milliseconds, already resolved
/// (0xFFFFFFFF poll intervals replaced by the type's values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timeouts {
    /// Longest gap allowed between status reports of a pending operation.
    pub pending_ms: u32,
    /// Longest an entry point other than Terminate may run before the host is declared hung.
    pub deadlock_ms: u32,
    /// LooksAlive period while online.
    pub looks_alive_ms: u32,
    /// IsAlive period while online.
    pub is_alive_ms: u32,
}

impl Timeouts {
    /// Resolves a resource's timing properties as WSFC does: a poll interval of `0xFFFFFFFF`
    /// takes the resource type's value (whose own defaults are 5000 ms and 60000 ms).
    pub fn resolve(
        pending_ms: u32,
        deadlock_ms: u32,
        looks_alive_ms: u32,
        is_alive_ms: u32,
        type_looks_alive_ms: u32,
        type_is_alive_ms: u32,
    ) -> Timeouts {
        let or_type = |v: u32, t: u32| if v == resapi::USE_TYPE_VALUE { t } else { v };
        Timeouts {
            pending_ms,
            deadlock_ms,
            looks_alive_ms: or_type(looks_alive_ms, type_looks_alive_ms),
            is_alive_ms: or_type(is_alive_ms, type_is_alive_ms),
        }
    }
}

impl Default for Timeouts {
    /// WSFC's defaults: PendingTimeout 180 s, DeadlockTimeout 300 s, type poll intervals
    /// 5 s / 60 s.
    fn default() -> Self {
        Timeouts { pending_ms: 180_000, deadlock_ms: 300_000, looks_alive_ms: 5_000, is_alive_ms: 60_000 }
    }
}

/// Which resource type implementation runs a resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TypeSpec {
    /// The built-in `dummy` type.
    Dummy,
    /// The built-in `process` type (Generic Application).
    Process,
    /// The built-in `script` type (Generic Script).
    Script,
    /// The built-in `ocf` type (OCF resource agents).
    Ocf,
    /// A native plug-in: the `.so` and the type name to pass to its Startup.
    Native {
        /// Path of the shared object.
        path: String,
        /// The resource type name given to `Startup`/`StartupEx`.
        type_name: String,
    },
}

/// Requests from the parent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum ToHost {
    /// The first frame: the parent's protocol version, and where resources' processes go.
    Hello {
        /// [`PROTOCOL_VERSION`].
        version: u32,
        /// The parent's cgroup v2 directory for this host's resources (each resource's processes
        /// go in `r<id>` under it); absent where cgroup v2 is not usable, and process groups are
        /// recorded instead (reported by [`FromHost::ProcessGroup`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cgroup: Option<String>,
    },
    /// Open a resource (Startup of its type first, if this host has not started it).
    Open {
        /// The id facts will carry.
        id: ResourceId,
        /// The resource's name.
        name: String,
        /// Its type.
        type_spec: TypeSpec,
        /// Private properties, as a CLUSPROP property list.
        properties: Vec<u8>,
        /// `CLUS_RESDLL_OPEN_*`.
        flags: u32,
        /// Timing properties.
        timeouts: Timeouts,
    },
    /// OnlineV2.
    Online {
        /// Which resource.
        id: ResourceId,
        /// `CLUS_RESDLL_ONLINE_*`.
        flags: u32,
        /// The opaque input buffer.
        input: Vec<u8>,
    },
    /// OfflineV2.
    Offline {
        /// Which resource.
        id: ResourceId,
        /// The node a move is heading to.
        destination: Option<String>,
        /// `CLUS_RESDLL_OFFLINE_*`.
        flags: u32,
        /// The opaque input buffer.
        input: Vec<u8>,
    },
    /// Terminate, which may run beside any other entry point.
    Terminate {
        /// Which resource.
        id: ResourceId,
    },
    /// ResourceControl; answered by `ControlDone` with the same `call`.
    Control {
        /// Which resource.
        id: ResourceId,
        /// Matches the answer to the request.
        call: u64,
        /// The control code.
        code: u32,
        /// Input buffer.
        input: Vec<u8>,
        /// Size of the output buffer to offer.
        output_size: u32,
    },
    /// Run a health check now (an operator's "check it now", or a probe): answered by `Checked`.
    Check {
        /// Which resource.
        id: ResourceId,
        /// IsAlive if true, LooksAlive if false.
        is_alive: bool,
    },
    /// Cancel the operation in progress.
    Cancel {
        /// Which resource.
        id: ResourceId,
    },
    /// New private properties and timeouts (after the parent stored them).
    Update {
        /// Which resource.
        id: ResourceId,
        /// Private properties, as a CLUSPROP property list.
        properties: Vec<u8>,
        /// Timing properties.
        timeouts: Timeouts,
    },
    /// Close (terminating first if not offline).
    Close {
        /// Which resource.
        id: ResourceId,
    },
    /// Renew the lease: if no renewal arrives within `duration_ms`, terminate every resource.
    Lease {
        /// How long this renewal lasts.
        duration_ms: u64,
    },
}

/// Why a resource's state changed, when the host (not the resource) decided it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// The resource reported or returned it.
    Resource,
    /// The entry point returned an error; the host terminated the resource.
    CallFailed,
    /// PendingTimeout passed without a report; the host terminated the resource.
    PendingTimeout,
    /// IsAlive returned false; the host terminated the resource.
    HealthCheck,
    /// The lease expired; the host terminated every resource.
    LeaseExpired,
    /// The parent asked for Terminate.
    Terminated,
    /// The host holding the resource died or was killed (reported by the parent side).
    HostDied,
}

/// Facts from the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "fact", rename_all = "snake_case")]
pub enum FromHost {
    /// The first frame: the host's protocol version and process id.
    Hello {
        /// [`PROTOCOL_VERSION`].
        version: u32,
        /// The host's pid.
        pid: u32,
    },
    /// The outcome of `Open`.
    Opened {
        /// Which resource.
        id: ResourceId,
        /// `ERROR_SUCCESS` or why it failed.
        status: u32,
        /// A readable reason on failure.
        message: String,
    },
    /// A state change (also each accepted pending checkpoint).
    State {
        /// Which resource.
        id: ResourceId,
        /// `CLUSTER_RESOURCE_STATE`.
        state: i32,
        /// The checkpoint of the report.
        checkpoint: u32,
        /// The Win32 status recorded with the change (`ERROR_RESOURCE_CALL_TIMED_OUT`, …).
        status: u32,
        /// The resource's application-specific error code.
        application_code: u32,
        /// `CLUSRESDLL_STATUS_*` flags.
        flags: u32,
        /// Who decided.
        cause: Cause,
    },
    /// A health check returned false.
    Unhealthy {
        /// Which resource.
        id: ResourceId,
        /// `looks_alive` or `is_alive`.
        check: String,
    },
    /// The answer to `Check`.
    Checked {
        /// Which resource.
        id: ResourceId,
        /// `looks_alive` or `is_alive`.
        check: String,
        /// What the entry point returned.
        alive: bool,
    },
    /// LogEvent.
    Log {
        /// Which resource.
        id: ResourceId,
        /// `LOG_LEVEL`.
        level: u32,
        /// The message.
        message: String,
    },
    /// SetResourceLockedMode.
    LockedMode {
        /// Which resource.
        id: ResourceId,
        /// Locked or not.
        locked: bool,
        /// The resource's reason code.
        reason: u32,
    },
    /// SignalFailure.
    FailureSignal {
        /// Which resource.
        id: ResourceId,
        /// `FAILURE_TYPE`.
        failure_type: u32,
        /// Application-specific code.
        code: u32,
    },
    /// The answer to `Control`.
    ControlDone {
        /// The request's `call`.
        call: u64,
        /// The control routine's status.
        status: u32,
        /// What it wrote (at most `output_size` bytes).
        output: Vec<u8>,
        /// Bytes written, or needed with `ERROR_MORE_DATA`.
        bytes_returned: u32,
    },
    /// The resource was closed and forgotten.
    Closed {
        /// Which resource.
        id: ResourceId,
    },
    /// An entry point has run past its DeadlockTimeout: the parent must kill this host.
    Deadlock {
        /// Which resource.
        id: ResourceId,
        /// The hung entry point.
        entry_point: String,
        /// How long it has run.
        elapsed_ms: u64,
    },
    /// Resource code panicked: the host is about to abort (WSFC: an exception in a resource call
    /// takes the monitor down). The parent isolates the resource.
    Crashed {
        /// Which resource.
        id: ResourceId,
        /// The entry point that panicked.
        entry_point: String,
    },
    /// Sent every [`HEARTBEAT_MS`]: the host is alive and its timer thread runs.
    Heartbeat,
    /// Without a cgroup: a resource started a process group, which the parent kills if this
    /// host dies (the host kills it itself when the resource goes offline or is terminated).
    ProcessGroup {
        /// Which resource.
        id: ResourceId,
        /// The group's id.
        pgid: u32,
    },
    /// A protocol error on a request (unknown id, duplicate open, …), with no state change.
    Rejected {
        /// Which resource.
        id: ResourceId,
        /// Why.
        status: u32,
        /// A readable reason.
        message: String,
    },
}

/// A frame that could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The peer closed the stream between frames.
    #[error("peer closed the connection")]
    Closed,
    /// An I/O error.
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
    /// A frame longer than [`MAX_FRAME`].
    #[error("frame of {0} bytes exceeds the {MAX_FRAME}-byte limit")]
    TooLarge(usize),
    /// A frame that is not a valid message.
    #[error("malformed message: {0}")]
    Malformed(#[from] serde_json::Error),
}

/// Encodes one frame (length and body), refusing one over [`MAX_FRAME`] before anything is
/// sent, so that the sender can fail the request instead of losing it.
pub fn encode_frame<T: Serialize>(message: &T) -> Result<Vec<u8>, FrameError> {
    let body = serde_json::to_vec(message)?;
    let len = u32::try_from(body.len()).ok().filter(|l| *l as usize <= MAX_FRAME);
    let len = len.ok_or(FrameError::TooLarge(body.len()))?;
    let mut frame = Vec::with_capacity(body.len() + 4);
    frame.extend_from_slice(&len.to_le_bytes());
    frame.extend_from_slice(&body);
    Ok(frame)
}

/// Writes one frame.
pub fn write_frame<T: Serialize>(out: &mut impl Write, message: &T) -> Result<(), FrameError> {
    let body = serde_json::to_vec(message)?;
    if body.len() > MAX_FRAME {
        return Err(FrameError::TooLarge(body.len()));
    }
    let len = u32::try_from(body.len()).map_err(|_| FrameError::TooLarge(body.len()))?;
    out.write_all(&len.to_le_bytes())?;
    out.write_all(&body)?;
    out.flush()?;
    Ok(())
}

/// Reads one frame; `Closed` on a clean end of stream.
pub fn read_frame<T: for<'de> Deserialize<'de>>(input: &mut impl Read) -> Result<T, FrameError> {
    let mut len = [0u8; 4];
    match input.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Err(FrameError::Closed),
        Err(e) => return Err(e.into()),
    }
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(FrameError::TooLarge(len));
    }
    let mut body = vec![0u8; len];
    input.read_exact(&mut body)?;
    Ok(serde_json::from_slice(&body)?)
}

/// Async counterparts for the parent side.
pub mod tokio_io {
    use super::{FrameError, MAX_FRAME};
    use serde::{Deserialize, Serialize};
    use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

    /// Writes one frame.
    pub async fn write_frame<T: Serialize>(out: &mut (impl AsyncWrite + Unpin), message: &T) -> Result<(), FrameError> {
        let body = serde_json::to_vec(message)?;
        let len = u32::try_from(body.len()).ok().filter(|l| *l as usize <= MAX_FRAME);
        let len = len.ok_or(FrameError::TooLarge(body.len()))?;
        out.write_all(&len.to_le_bytes()).await?;
        out.write_all(&body).await?;
        out.flush().await?;
        Ok(())
    }

    /// Reads one frame; `Closed` on a clean end of stream.
    pub async fn read_frame<T: for<'de> Deserialize<'de>>(
        input: &mut (impl AsyncRead + Unpin),
    ) -> Result<T, FrameError> {
        let mut len = [0u8; 4];
        match input.read_exact(&mut len).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Err(FrameError::Closed),
            Err(e) => return Err(e.into()),
        }
        let len = u32::from_le_bytes(len) as usize;
        if len > MAX_FRAME {
            return Err(FrameError::TooLarge(len));
        }
        let mut body = vec![0u8; len];
        input.read_exact(&mut body).await?;
        Ok(serde_json::from_slice(&body)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poll_intervals_fall_back_to_the_type() {
        let t = Timeouts::resolve(180_000, 300_000, u32::MAX, u32::MAX, 5_000, 60_000);
        assert_eq!(t, Timeouts::default());
        let t = Timeouts::resolve(10, 1_000, 250, u32::MAX, 5_000, 30_000);
        assert_eq!((t.looks_alive_ms, t.is_alive_ms), (250, 30_000));
    }

    #[test]
    fn frames_round_trip_and_limits_hold() {
        let msg = ToHost::Offline { id: 7, destination: Some("node-b".into()), flags: 0x40, input: vec![1, 2] };
        let mut buf = Vec::new();
        write_frame(&mut buf, &msg).unwrap();
        assert_eq!(read_frame::<ToHost>(&mut buf.as_slice()).unwrap(), msg);
        assert!(matches!(read_frame::<ToHost>(&mut [].as_slice()), Err(FrameError::Closed)));
        let huge = ((MAX_FRAME + 1) as u32).to_le_bytes();
        assert!(matches!(read_frame::<ToHost>(&mut huge.as_slice()), Err(FrameError::TooLarge(_))));
        let junk = [3u8, 0, 0, 0, b'{', b'x', b'}'];
        assert!(matches!(read_frame::<ToHost>(&mut junk.as_slice()), Err(FrameError::Malformed(_))));
    }
}
