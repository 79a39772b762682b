//! # halo-type-process — a long-running program (WSFC's Generic Application)
//!
//! Online starts the program in a process group of its own; offline sends the stop signal to the
//! group, waits the grace period, then SIGKILLs the group; terminate SIGKILLs it at once.
//! LooksAlive is "the program is still running"; IsAlive adds the optional probe (a command, a
//! TCP connect or an HTTP GET). With a probe, online stays pending until the probe first passes.
//!
//! This crate owns that behaviour only; the host enforces timeouts and serialization.

use halo_type_exec::{Group, Keep, Scope, parse_signal, spawn_status};
use nix::sys::signal::Signal;
use resapi::{
    Callbacks, ExitState, LogLevel, OfflineFlags, OnlineFlags, OpenRequest, Parameters, ParsedProperties,
    PendingWorker, PropertyItem, PropertyTable, Resource, ResourceState, ResourceStatusEx, ResourceType, Status,
};
use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// The private properties of `process`.
pub const PROPERTIES: PropertyTable = PropertyTable {
    items: &[
        PropertyItem::string("Command", None, "the program to run (a path, or a name looked up in PATH)").required(),
        PropertyItem::multi_string(
            "Arguments",
            "its arguments: MULTI_SZ, or one string split on spaces (quote with ' or \\\")",
        ),
        PropertyItem::multi_string("Environment", "extra environment, one NAME=VALUE per entry"),
        PropertyItem::string("WorkingDirectory", None, "directory to run in (default: the host's)"),
        PropertyItem::string(
            "OutputFile",
            None,
            "file that receives stdout and stderr, appended (default: discarded): an absolute path, no symbolic \
             links, a regular file of the node's user (docs/security.md)",
        ),
        PropertyItem::string("StopSignal", Some("SIGTERM"), "signal that asks the program to stop"),
        PropertyItem::dword("StopTimeoutMs", 10_000, 0, 3_600_000, "grace period after StopSignal before SIGKILL"),
        PropertyItem::string("ProbeCommand", None, "health probe: a shell command, healthy if it exits 0"),
        PropertyItem::string("ProbeTcp", None, "health probe: HOST:PORT that must accept a connection"),
        PropertyItem::string("ProbeHttp", None, "health probe: http://HOST:PORT/PATH that must answer 2xx or 3xx"),
        PropertyItem::dword("ProbeTimeoutMs", 2_000, 10, 600_000, "how long one probe may take"),
    ],
};

/// The `process` resource type.
#[derive(Debug, Default)]
pub struct ProcessType;

#[derive(Debug, Clone)]
enum Probe {
    Command(String),
    Tcp(String),
    Http { authority: String, path: String },
}

#[derive(Debug, Clone)]
struct Config {
    command: String,
    arguments: Vec<String>,
    environment: Vec<(String, String)>,
    working_directory: Option<String>,
    output_file: Option<String>,
    stop_signal: Signal,
    stop_timeout: Duration,
    probe: Option<Probe>,
    probe_timeout: Duration,
}

fn invalid(message: String) -> (Status, String) {
    (Status::ERROR_INVALID_PARAMETER, message)
}

/// Splits a command line on spaces, honouring single and double quotes and backslashes.
pub fn split_arguments(line: &str) -> Result<Vec<String>, String> {
    let (mut args, mut current, mut in_word) = (Vec::new(), String::new(), false);
    let mut quote: Option<char> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"'), '\\') | (None, '\\') => match chars.next() {
                Some(n) => current.push(n),
                None => return Err("trailing backslash".into()),
            },
            (Some(_), c) => current.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    args.push(std::mem::take(&mut current));
                    in_word = false;
                }
            }
            (None, c) => {
                current.push(c);
                in_word = true;
            }
        }
        if quote.is_some() {
            in_word = true;
        }
    }
    if quote.is_some() {
        return Err("unterminated quote".into());
    }
    if in_word {
        args.push(current);
    }
    Ok(args)
}

impl Config {
    fn read(parameters: &Parameters) -> Result<Config, (Status, String)> {
        let list = parameters.snapshot();
        let p: ParsedProperties = PROPERTIES.verify(&list).map_err(|e| (e.status, e.to_string()))?;
        let arguments = match list.get("Arguments") {
            Some(resapi::ValueData::MultiSz(v)) => v.clone(),
            Some(v) => match v.as_str() {
                Some(s) => split_arguments(s).map_err(|e| invalid(format!("property \"Arguments\": {e}")))?,
                None => Vec::new(),
            },
            None => Vec::new(),
        };
        let environment = p
            .strings("Environment")
            .iter()
            .map(|e| match e.split_once('=') {
                Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
                _ => Err(invalid(format!("property \"Environment\": {e:?} is not NAME=VALUE"))),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let stop_signal = parse_signal(p.string("StopSignal").unwrap_or("SIGTERM"))
            .map_err(|e| invalid(format!("property \"StopSignal\": {e}")))?;
        let probes: Vec<Probe> = [
            p.string("ProbeCommand").map(|c| Ok(Probe::Command(c.to_string()))),
            p.string("ProbeTcp").map(|a| Ok(Probe::Tcp(a.to_string()))),
            p.string("ProbeHttp").map(parse_http),
        ]
        .into_iter()
        .flatten()
        .collect::<Result<_, _>>()?;
        if probes.len() > 1 {
            return Err(invalid("set at most one of ProbeCommand, ProbeTcp, ProbeHttp".into()));
        }
        let ms = |n: &str| Duration::from_millis(p.dword(n).unwrap_or(0).into());
        Ok(Config {
            command: p.string("Command").unwrap_or_default().to_string(),
            arguments,
            environment,
            working_directory: p.string("WorkingDirectory").map(str::to_string),
            output_file: p.string("OutputFile").map(check_output_path).transpose()?,
            stop_signal,
            stop_timeout: ms("StopTimeoutMs"),
            probe: probes.into_iter().next(),
            probe_timeout: ms("ProbeTimeoutMs"),
        })
    }
}

/// OutputFile's rule, checked when it is set: an absolute path, without `.` or `..`.
fn check_output_path(path: &str) -> Result<String, (Status, String)> {
    let p = std::path::Path::new(path);
    let plain = p.components().all(|c| matches!(c, std::path::Component::RootDir | std::path::Component::Normal(_)));
    if !p.is_absolute() || !plain || path.ends_with('/') {
        return Err(invalid(format!(
            "property \"OutputFile\": {path:?} must be an absolute path to a file, without . or .. components"
        )));
    }
    Ok(path.to_string())
}

/// Opens OutputFile for appending without ever writing through a link an attacker placed: the
/// halo node usually runs as root, and the file may sit in a directory others can write
/// (`/tmp`). The rule:
/// - the directories of the path are real directories (no symbolic link anywhere in them:
///   the path equals its canonical form);
/// - the file itself is not a symbolic link (`O_NOFOLLOW`), and is created 0640 if missing;
/// - an existing file must be a regular file owned by the node's user with a single link (not a
///   FIFO or device, not someone else's file, not a hard link to another file).
pub fn open_output_file(path: &str) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let refuse = |why: String| std::io::Error::new(std::io::ErrorKind::PermissionDenied, why);
    let p = std::path::Path::new(path);
    let (Some(dir), Some(name)) = (p.parent(), p.file_name()) else {
        return Err(refuse(format!("{path} names no file")));
    };
    if std::fs::canonicalize(dir)? != dir {
        return Err(refuse(format!("{} goes through a symbolic link; give the real path", dir.display())));
    }
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC | nix::libc::O_NONBLOCK)
        .open(dir.join(name))
        .map_err(|e| match e.raw_os_error() {
            Some(nix::libc::ELOOP) => refuse(format!("{path} is a symbolic link; OutputFile is never followed")),
            _ => e,
        })?;
    let meta = file.metadata()?;
    let me = nix::unistd::geteuid().as_raw();
    if !meta.file_type().is_file() {
        return Err(refuse(format!("{path} is not a regular file")));
    }
    if meta.uid() != me || meta.nlink() != 1 {
        return Err(refuse(format!(
            "{path} belongs to another user or has other links; halo appends only to its own files"
        )));
    }
    // Non-blocking was only for the open (a FIFO would block it); the program gets a normal file.
    let flags = nix::fcntl::fcntl(std::os::fd::AsRawFd::as_raw_fd(&file), nix::fcntl::FcntlArg::F_GETFL)
        .map_err(std::io::Error::from)?;
    let flags = nix::fcntl::OFlag::from_bits_truncate(flags) & !nix::fcntl::OFlag::O_NONBLOCK;
    nix::fcntl::fcntl(std::os::fd::AsRawFd::as_raw_fd(&file), nix::fcntl::FcntlArg::F_SETFL(flags))
        .map_err(std::io::Error::from)?;
    Ok(file)
}

fn parse_http(url: &str) -> Result<Probe, (Status, String)> {
    let rest = url.strip_prefix("http://").ok_or_else(|| {
        invalid(format!("property \"ProbeHttp\": {url:?} must start with http:// (https is not probed)"))
    })?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() {
        return Err(invalid(format!("property \"ProbeHttp\": {url:?} has no host")));
    }
    let authority = if authority.contains(':') { authority.to_string() } else { format!("{authority}:80") };
    Ok(Probe::Http { authority, path: path.to_string() })
}

impl Probe {
    fn check(&self, scope: Scope, timeout: Duration) -> Result<(), String> {
        match self {
            Probe::Command(cmd) => {
                let mut command = Command::new("/bin/sh");
                command.args(["-c", cmd]);
                let out = halo_type_exec::run(scope, &mut command, Keep::Stderr, timeout, || false)
                    .map_err(|e| format!("probe command: {e}"))?;
                match (out.timed_out, out.code) {
                    (true, _) => Err(format!("probe command timed out after {timeout:?}")),
                    (false, Some(0)) => Ok(()),
                    (false, code) => Err(format!("probe command exited with {code:?}: {}", out.stderr.trim())),
                }
            }
            Probe::Tcp(address) => connect(address, timeout).map(drop),
            Probe::Http { authority, path } => {
                let mut stream = connect(authority, timeout)?;
                let request = format!("GET {path} HTTP/1.0\r\nHost: {authority}\r\nUser-Agent: halo-probe\r\n\r\n");
                stream.write_all(request.as_bytes()).map_err(|e| format!("{authority}: {e}"))?;
                let mut head = [0u8; 64];
                let n = stream.read(&mut head).map_err(|e| format!("{authority}: {e}"))?;
                let line = String::from_utf8_lossy(&head[..n]);
                let code = line.split_whitespace().nth(1).and_then(|c| c.parse::<u16>().ok());
                match code {
                    Some(c) if (200..400).contains(&c) => Ok(()),
                    Some(c) => Err(format!("GET http://{authority}{path} answered {c}")),
                    None => Err(format!("GET http://{authority}{path}: not an HTTP answer")),
                }
            }
        }
    }
}

fn connect(address: &str, timeout: Duration) -> Result<TcpStream, String> {
    let addrs = address.to_socket_addrs().map_err(|e| format!("{address}: {e}"))?;
    let mut last = format!("{address}: no address");
    for a in addrs {
        match TcpStream::connect_timeout(&a, timeout) {
            Ok(s) => {
                let _ = s.set_read_timeout(Some(timeout));
                let _ = s.set_write_timeout(Some(timeout));
                return Ok(s);
            }
            Err(e) => last = format!("{address}: {e}"),
        }
    }
    Err(last)
}

impl ResourceType for ProcessType {
    fn open(&self, request: OpenRequest) -> Result<Box<dyn Resource>, Status> {
        Config::read(&request.parameters).map_err(|(status, message)| {
            request.callbacks.log_event(LogLevel::Error, &format!("process {}: {message}", request.name));
            status
        })?;
        Ok(Box::new(Process {
            scope: Scope::resource(request.callbacks.handle().0),
            callbacks: request.callbacks,
            parameters: request.parameters,
            running: Arc::new(Mutex::new(None)),
            worker: PendingWorker::default(),
        }))
    }
}

struct Process {
    /// Where the program and the probe commands run: killed as a whole if the host dies.
    scope: Scope,
    callbacks: Callbacks,
    parameters: Parameters,
    running: Arc<Mutex<Option<(Group, Config)>>>,
    worker: PendingWorker,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Process {
    fn start(&self, config: &Config) -> Result<Group, Status> {
        let mut command = Command::new(&config.command);
        command.args(&config.arguments).envs(config.environment.iter().cloned()).stdin(Stdio::null());
        if let Some(dir) = &config.working_directory {
            command.current_dir(dir);
        }
        match &config.output_file {
            Some(path) => {
                let file = open_output_file(path).map_err(|e| {
                    self.callbacks.log_event(LogLevel::Error, &format!("cannot open OutputFile {path}: {e}"));
                    halo_type_exec::spawn_status(&e)
                })?;
                let err = file.try_clone().map_err(|e| halo_type_exec::spawn_status(&e))?;
                command.stdout(file).stderr(err);
            }
            None => {
                command.stdout(Stdio::null()).stderr(Stdio::null());
            }
        }
        Group::spawn(self.scope, &mut command).map_err(|e| {
            self.callbacks.log_event(LogLevel::Error, &format!("cannot start {:?}: {e}", config.command));
            spawn_status(&e)
        })
    }
}

impl Resource for Process {
    fn online_v2(&self, _flags: OnlineFlags, _input: &[u8]) -> Status {
        self.worker.stop();
        let config = match Config::read(&self.parameters) {
            Ok(c) => c,
            Err((status, message)) => {
                self.callbacks.log_event(LogLevel::Error, &message);
                return status;
            }
        };
        if let Some((mut old, _)) = lock(&self.running).take() {
            old.kill();
        }
        let group = match self.start(&config) {
            Ok(g) => g,
            Err(status) => return status,
        };
        self.callbacks.log_event(LogLevel::Information, &format!("started {} as pid {}", config.command, group.pid()));
        let probe = config.probe.clone();
        let probe_timeout = config.probe_timeout;
        *lock(&self.running) = Some((group, config));
        let Some(probe) = probe else { return Status::ERROR_SUCCESS };
        // Pending until the probe first passes; the program dying meanwhile fails the online.
        let (callbacks, running, scope) = (self.callbacks.clone(), self.running.clone(), self.scope);
        self.worker.start("process-online", move |ctx| {
            let mut checkpoint = 0;
            loop {
                let exited = lock(&running).as_mut().and_then(|(g, _)| g.exited());
                if let Some(status) = exited {
                    callbacks.log_event(LogLevel::Error, &format!("the program exited during online: {status}"));
                    callbacks.set_resource_status_ex(ResourceStatusEx::new(ResourceState::Failed, checkpoint + 1));
                    return 1;
                }
                if probe.check(scope, probe_timeout).is_ok() {
                    callbacks.set_resource_status_ex(ResourceStatusEx::new(ResourceState::Online, checkpoint + 1));
                    return 0;
                }
                checkpoint += 1;
                let report = ResourceStatusEx::new(ResourceState::OnlinePending, checkpoint);
                if callbacks.set_resource_status_ex(report) == ExitState::Terminate
                    || ctx.sleep(Duration::from_millis(100))
                {
                    return 1;
                }
            }
        })
    }

    fn offline_v2(&self, _destination: Option<&str>, _flags: OfflineFlags, _input: &[u8]) -> Status {
        self.worker.stop();
        let Some((mut group, config)) = lock(&self.running).take() else { return Status::ERROR_SUCCESS };
        group.signal(config.stop_signal);
        if group.wait_for(Duration::from_millis(200), || true).is_some() {
            group.kill(); // anything the leader left behind in its group
            return Status::ERROR_SUCCESS;
        }
        let callbacks = self.callbacks.clone();
        self.worker.start("process-offline", move |ctx| {
            let mut checkpoint = 0;
            let step = Duration::from_millis(500);
            let mut left = config.stop_timeout;
            loop {
                let wait = left.min(step);
                if group.wait_for(wait, || !ctx.check_terminate()).is_some() || ctx.check_terminate() || left <= step {
                    break;
                }
                left -= wait;
                checkpoint += 1;
                if callbacks.set_resource_status_ex(ResourceStatusEx::new(ResourceState::OfflinePending, checkpoint))
                    == ExitState::Terminate
                {
                    break;
                }
            }
            group.kill();
            callbacks.set_resource_status_ex(ResourceStatusEx::new(ResourceState::Offline, checkpoint + 1));
            0
        })
    }

    fn terminate(&self) {
        if let Some((mut group, _)) = lock(&self.running).take() {
            group.kill();
        }
        self.worker.stop();
    }

    fn looks_alive(&self) -> bool {
        lock(&self.running).as_mut().is_some_and(|(g, _)| g.exited().is_none())
    }

    fn is_alive(&self) -> bool {
        let probe = {
            let mut running = lock(&self.running);
            let Some((g, c)) = running.as_mut() else { return false };
            if g.exited().is_some() {
                return false;
            }
            c.probe.clone().map(|p| (p, c.probe_timeout))
        };
        match probe {
            None => true,
            Some((p, timeout)) => match p.check(self.scope, timeout) {
                Ok(()) => true,
                Err(e) => {
                    self.callbacks.log_event(LogLevel::Warning, &format!("health probe failed: {e}"));
                    false
                }
            },
        }
    }

    fn close(&self) {
        self.terminate();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_split_like_a_shell() {
        assert_eq!(split_arguments(r#"-m http.server  8080"#).unwrap(), ["-m", "http.server", "8080"]);
        assert_eq!(
            split_arguments(r#"-c 'echo "a b"' "x y" z\ w ''"#).unwrap(),
            ["-c", "echo \"a b\"", "x y", "z w", ""]
        );
        assert!(split_arguments("'open").is_err());
    }

    #[test]
    fn tcp_probe_needs_a_listener() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let probe = Probe::Tcp(listener.local_addr().unwrap().to_string());
        assert_eq!(probe.check(Scope::NONE, Duration::from_secs(5)), Ok(()));
        drop(listener);
        let err = probe.check(Scope::NONE, Duration::from_secs(5)).unwrap_err();
        assert!(err.contains("127.0.0.1"), "{err}");
    }

    #[test]
    fn http_probe_urls() {
        assert!(matches!(parse_http("http://127.0.0.1:8080/health"),
            Ok(Probe::Http { authority, path }) if authority == "127.0.0.1:8080" && path == "/health"));
        assert!(
            matches!(parse_http("http://localhost"), Ok(Probe::Http { authority, path }) if authority == "localhost:80" && path == "/")
        );
        assert!(parse_http("https://x").is_err());
    }
}

#[cfg(test)]
mod output_file_tests {
    use super::*;

    #[test]
    fn output_files_never_follow_links_or_append_to_others_files() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().canonicalize().unwrap();
        let log = real.join("out.log");
        let f = open_output_file(log.to_str().unwrap()).unwrap();
        drop(f);
        assert!(open_output_file(log.to_str().unwrap()).is_ok(), "its own file again");
        // A symbolic link as the file: refused, and its target untouched.
        let target = real.join("target");
        std::fs::write(&target, "secret").unwrap();
        let link = real.join("link.log");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let err = open_output_file(link.to_str().unwrap()).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        // A symbolic link among the directories.
        let dirlink = real.join("d");
        std::os::unix::fs::symlink(&real, &dirlink).unwrap();
        assert!(open_output_file(dirlink.join("x.log").to_str().unwrap()).is_err());
        // A hard link to another file.
        let hard = real.join("hard.log");
        std::fs::hard_link(&target, &hard).unwrap();
        assert!(open_output_file(hard.to_str().unwrap()).is_err());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "secret");
        // Relative paths and .. are refused when set.
        for bad in ["out.log", "/var/log/../x", "/tmp/dir/"] {
            assert!(check_output_path(bad).is_err(), "{bad}");
        }
    }
}
