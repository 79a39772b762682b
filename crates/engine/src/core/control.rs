//! Resource control codes: the resource type answers first; a code it does not handle
//! (`ERROR_INVALID_FUNCTION`), or a resource not open in any host, gets the cluster's default
//! handling of the common codes, as WSFC gives it.

use super::view::Opened;
use super::{Answer, Call, Command, Core, HostCall, Ready, Token};
use crate::model::{self, EngineError, ResourceDoc};
use halo_host::client::{ControlReply, HostError};
use resapi::{ResourceState, Status};
use serde::Serialize;
use std::collections::BTreeMap;

/// What a control call produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ControlOutput {
    /// The status (`ERROR_MORE_DATA` with `bytes_returned` = the size needed).
    pub status: u32,
    /// The output bytes.
    pub output: Vec<u8>,
    /// Bytes written, or needed.
    pub bytes_returned: u32,
}

/// A control call sent to a host, waiting for its answer.
#[derive(Debug, Clone)]
pub(super) struct PendingControl {
    name: String,
    code: u32,
    input: Vec<u8>,
    output_size: u32,
    /// The type's answer as it is, without the default handling.
    type_only: bool,
}

fn reply(data: &[u8], size: u32) -> ControlOutput {
    let needed = u32::try_from(data.len()).unwrap_or(u32::MAX);
    if needed > size {
        ControlOutput { status: Status::ERROR_MORE_DATA.0, output: Vec::new(), bytes_returned: needed }
    } else {
        ControlOutput { status: Status::ERROR_SUCCESS.0, output: data.to_vec(), bytes_returned: needed }
    }
}

fn status_only(status: Status) -> ControlOutput {
    ControlOutput { status: status.0, output: Vec::new(), bytes_returned: 0 }
}

/// A property list's values as the text the engine stores.
fn list_to_text(input: &[u8]) -> Result<BTreeMap<String, String>, EngineError> {
    let list = resapi::PropertyList::decode(input).map_err(|e| EngineError::new(e.status(), e.to_string()))?;
    list.iter()
        .map(|p| {
            let text = p.value().and_then(resapi::ValueData::to_text).ok_or_else(|| {
                EngineError::new(
                    Status::ERROR_INVALID_DATA,
                    format!("property {}: binary values are not stored", p.name),
                )
            })?;
            Ok((p.name.clone(), text))
        })
        .collect()
}

/// The effective common properties (defaults filled in), typed as the table declares them.
fn common_list(common: &BTreeMap<String, String>) -> Result<resapi::PropertyList, EngineError> {
    use resapi::{PropertyKind, ValueData};
    let parsed = model::verify("resource", &model::RESOURCE_COMMON, common)?;
    let mut list = resapi::PropertyList::new();
    for item in model::RESOURCE_COMMON.items {
        let value = match item.kind {
            PropertyKind::Dword { .. } => parsed.dword(item.name).map(ValueData::Dword),
            PropertyKind::Bool { .. } => Some(ValueData::Dword(u32::from(parsed.flag(item.name)))),
            PropertyKind::Sz { .. } => parsed.string(item.name).map(|s| ValueData::Sz(s.to_string())),
            PropertyKind::MultiSz => Some(ValueData::MultiSz(parsed.strings(item.name).to_vec())),
        };
        if let Some(v) = value {
            list.set(item.name, v);
        }
    }
    Ok(list)
}

fn encode(list: &resapi::PropertyList) -> Result<Vec<u8>, EngineError> {
    list.encode().map_err(|e| EngineError::new(e.status(), e.to_string()))
}

impl Core {
    /// ResourceControl: to the host if the resource is open there, else default handling.
    pub(super) fn control(
        &mut self,
        token: Token,
        name: &str,
        code: u32,
        input: Vec<u8>,
        output_size: u32,
        ready: &mut Ready,
    ) {
        let control = resapi::ControlCode(code);
        if control.is_internal() {
            let e = EngineError::new(
                Status::ERROR_INVALID_PARAMETER,
                format!("{control} is internal: only the cluster sends it"),
            );
            ready.replies.push((token, Err(e)));
            return;
        }
        let Some(r) = self.view.resources.get(name) else {
            ready.replies.push((token, Err(EngineError::no_resource(name))));
            return;
        };
        let pending = PendingControl { name: name.to_string(), code, input, output_size, type_only: false };
        if r.open == Opened::Open {
            let call = Call::Control { token, code, input: pending.input.clone(), output_size };
            ready.calls.push(HostCall { id: r.doc.id, resource: name.to_string(), call });
            self.controls.insert(token, pending);
        } else {
            self.default_control(token, pending, ready);
        }
    }

    /// A control code for the resource's type only (see [`Command::TypeControl`]).
    pub(super) fn type_control(
        &mut self,
        token: Token,
        name: &str,
        code: u32,
        input: Vec<u8>,
        output_size: u32,
        ready: &mut Ready,
    ) {
        match self.view.resources.get(name) {
            None => ready.replies.push((token, Err(EngineError::no_resource(name)))),
            Some(r) if r.open == Opened::Open => {
                let call = Call::Control { token, code, input: input.clone(), output_size };
                ready.calls.push(HostCall { id: r.doc.id, resource: name.to_string(), call });
                let pending = PendingControl { name: name.to_string(), code, input, output_size, type_only: true };
                self.controls.insert(token, pending);
            }
            Some(_) => ready.replies.push((token, Ok(Answer::Control(status_only(Status::ERROR_INVALID_FUNCTION))))),
        }
    }

    /// A host's answer to a control call.
    pub(super) fn on_controlled(&mut self, token: Token, result: Result<ControlReply, HostError>, ready: &mut Ready) {
        let Some(pending) = self.controls.remove(&token) else { return };
        if pending.type_only {
            let out = match result {
                Ok(r) => ControlOutput { status: r.status.0, output: r.output, bytes_returned: r.bytes_returned },
                // Closed meanwhile: nothing of the type answers.
                Err(e) if e.status == Status::ERROR_RESOURCE_NOT_FOUND => status_only(Status::ERROR_INVALID_FUNCTION),
                Err(e) => return ready.replies.push((token, Err(EngineError::new(e.status, e.message)))),
            };
            ready.replies.push((token, Ok(Answer::Control(out))));
            return;
        }
        match result {
            Ok(r) if r.status != Status::ERROR_INVALID_FUNCTION => {
                let out = ControlOutput { status: r.status.0, output: r.output, bytes_returned: r.bytes_returned };
                ready.replies.push((token, Ok(Answer::Control(out))));
            }
            Ok(_) => self.default_control(token, pending, ready),
            // Closed meanwhile (host died): the cluster answers for it.
            Err(e) if e.status == Status::ERROR_RESOURCE_NOT_FOUND => self.default_control(token, pending, ready),
            Err(e) => ready.replies.push((token, Err(EngineError::new(e.status, e.message)))),
        }
    }

    fn default_control(&mut self, token: Token, c: PendingControl, ready: &mut Ready) {
        match self.default_answer(token, &c, ready) {
            Ok(Some(out)) => ready.replies.push((token, Ok(Answer::Control(out)))),
            Ok(None) => {}
            Err(e) => ready.replies.push((token, Err(e))),
        }
    }

    /// The default handling; `None` when the answer follows a write.
    fn default_answer(
        &mut self,
        token: Token,
        c: &PendingControl,
        ready: &mut Ready,
    ) -> Result<Option<ControlOutput>, EngineError> {
        use resapi::control::codes::*;
        let Some(r) = self.view.resources.get(&c.name) else {
            return Err(EngineError::no_resource(&c.name));
        };
        let doc = r.doc.clone();
        let online = r.state == ResourceState::Online;
        let code = resapi::ControlCode(c.code);
        let size = c.output_size;
        Ok(Some(match code {
            x if x == CLUSCTL_RESOURCE_GET_CHARACTERISTICS || x == CLUSCTL_RESOURCE_GET_FLAGS => {
                reply(&0u32.to_le_bytes(), size)
            }
            x if x == CLUSCTL_RESOURCE_GET_COMMON_PROPERTIES => reply(&encode(&common_list(&doc.common)?)?, size),
            x if x == CLUSCTL_RESOURCE_GET_PRIVATE_PROPERTIES => reply(&encode(&model::to_list(&doc.private))?, size),
            x if x == CLUSCTL_RESOURCE_GET_RO_COMMON_PROPERTIES || x == CLUSCTL_RESOURCE_GET_RO_PRIVATE_PROPERTIES => {
                reply(&encode(&resapi::PropertyList::new())?, size)
            }
            x if x == CLUSCTL_RESOURCE_VALIDATE_COMMON_PROPERTIES => {
                let mut merged = doc.common.clone();
                merged.extend(list_to_text(&c.input)?);
                let candidate = ResourceDoc { common: merged, ..doc.clone() };
                match self.view.types.get(&doc.type_name).map(|(_, t)| candidate.policy(t)) {
                    Some(Ok(_)) => status_only(Status::ERROR_SUCCESS),
                    Some(Err(e)) => status_only(e.status),
                    None => status_only(Status::ERROR_CLUSTER_RESOURCE_TYPE_NOT_FOUND),
                }
            }
            x if x == CLUSCTL_RESOURCE_VALIDATE_PRIVATE_PROPERTIES => {
                list_to_text(&c.input)?;
                status_only(Status::ERROR_SUCCESS)
            }
            x if x == CLUSCTL_RESOURCE_SET_COMMON_PROPERTIES => {
                let command = Command::SetProperties {
                    name: c.name.clone(),
                    common: list_to_text(&c.input)?,
                    private: BTreeMap::new(),
                    unset: Vec::new(),
                };
                let answer = Answer::Control(status_only(Status::ERROR_SUCCESS));
                self.config_command_answering(token, command, answer, ready);
                return Ok(None);
            }
            x if x == CLUSCTL_RESOURCE_SET_PRIVATE_PROPERTIES => {
                let command = Command::SetProperties {
                    name: c.name.clone(),
                    common: BTreeMap::new(),
                    private: list_to_text(&c.input)?,
                    unset: Vec::new(),
                };
                // The type reads them at its next online.
                let status = if online { Status::ERROR_RESOURCE_PROPERTIES_STORED } else { Status::ERROR_SUCCESS };
                self.config_command_answering(token, command, Answer::Control(status_only(status)), ready);
                return Ok(None);
            }
            _ => status_only(Status::ERROR_INVALID_FUNCTION),
        }))
    }
}
