//! The local control plane's processes as kwokctl's binary runtime runs them: each component's
//! pid in `.cluster/kwok/clusters/<name>/pids/<component>.pid`, its log in `logs/`, its command
//! line in `/proc/<pid>/cmdline`. A fault test kills, pauses or relaunches one of them with the
//! same arguments, and a guard puts it back (running and `/readyz` answering) on every way out of
//! the test, panics included, so that the next test finds a healthy cluster.

use anyhow::{Context, Result, bail};
use jockey_e2e::{kubeconfig_path, kubectl};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The directory kwokctl keeps the cluster in: the one under `.cluster/kwok/clusters/` that has
/// pid files.
fn cluster_dir() -> Result<PathBuf> {
    let root = kubeconfig_path()
        .parent()
        .map(|p| p.join("kwok/clusters"))
        .context("the kubeconfig has no parent directory")?;
    let name = std::env::var("JOCKEY_CLUSTER_NAME").unwrap_or_else(|_| "jockey".into());
    let dir = root.join(name);
    if !dir.join("pids").is_dir() {
        bail!(
            "{} has no pids/: these tests need the local cluster of `make cluster` (kwokctl's \
             binary runtime)",
            dir.display()
        );
    }
    Ok(dir)
}

/// Sends `signal` (e.g. "KILL", "STOP", "CONT") to `pid` with kill(1).
pub fn signal(pid: u32, signal: &str) -> Result<()> {
    let out = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .output()
        .context("running kill")?;
    if !out.status.success() {
        bail!(
            "kill -{signal} {pid}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// Whether `pid` is a live process (not gone, not a zombie).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// One component of the local control plane.
pub struct Component {
    pub name: &'static str,
    dir: PathBuf,
}

impl Component {
    pub fn new(name: &'static str) -> Result<Self> {
        Ok(Self {
            name,
            dir: cluster_dir()?,
        })
    }

    fn pid_file(&self) -> PathBuf {
        self.dir.join("pids").join(format!("{}.pid", self.name))
    }

    pub fn pid(&self) -> Result<u32> {
        let text = std::fs::read_to_string(self.pid_file())
            .with_context(|| format!("reading {}", self.pid_file().display()))?;
        text.trim()
            .parse()
            .with_context(|| format!("{} holds {text:?}", self.pid_file().display()))
    }

    /// The running process's command line, read before it is killed so it can be relaunched.
    pub fn command_line(&self) -> Result<Vec<String>> {
        let pid = self.pid()?;
        let raw = std::fs::read(format!("/proc/{pid}/cmdline"))
            .with_context(|| format!("reading the command line of {} ({pid})", self.name))?;
        Ok(raw
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect())
    }

    /// Starts the component with `args` (as kwokctl did: in the cluster directory, output
    /// appended to its log, in a process group of its own so the test's end does not touch it)
    /// and records its pid where kwokctl and `make cluster-down` look for it.
    pub fn launch(&self, args: &[String]) -> Result<u32> {
        let (program, rest) = args.split_first().context("an empty command line")?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("logs").join(format!("{}.log", self.name)))?;
        let child = Command::new(program)
            .args(rest)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting {} again", self.name))?;
        let pid = child.id();
        std::fs::write(self.pid_file(), pid.to_string())?;
        Ok(pid)
    }
}

/// Waits until the API server answers `/readyz` (kubectl, so no client state is reused).
pub fn wait_api_ready(timeout: Duration) -> Result<()> {
    let start = Instant::now();
    loop {
        if kubectl(&["get", "--raw=/readyz"]).is_ok_and(|o| o.status.success()) {
            return Ok(());
        }
        if start.elapsed() > timeout {
            bail!("the API server did not answer /readyz within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The components a fault test may take down, directly (kube-apiserver) or as a consequence:
/// kube-controller-manager and kube-scheduler exit when they cannot renew their leader Lease
/// for 10 s (as they do in any cluster, where the kubelet or systemd starts them again; kwokctl
/// does not). Their command lines are read when the guard is made.
const SUPERVISED: [&str; 4] = [
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok-controller",
];

/// The control plane under a fault test: kube-apiserver can be SIGKILLed and started again with
/// the same arguments, and a supervisor thread plays systemd for the others (starting again any
/// that exited). On drop, everything is running again and `/readyz` answers.
pub struct ControlPlane {
    components: Arc<Vec<(Component, Vec<String>)>>,
    /// Set while the test keeps kube-apiserver down on purpose.
    holding: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    supervisor: Option<std::thread::JoinHandle<()>>,
}

fn relaunch_dead(components: &[(Component, Vec<String>)], holding: bool) {
    for (c, args) in components {
        if holding && c.name == "kube-apiserver" {
            continue;
        }
        if !c.pid().is_ok_and(alive) {
            eprintln!("fault guard: {} is not running; starting it again", c.name);
            if let Err(e) = c.launch(args) {
                eprintln!("fault guard: {e:#}");
            }
        }
    }
}

impl ControlPlane {
    pub fn new() -> Result<Self> {
        let mut components = Vec::new();
        for name in SUPERVISED {
            let c = Component::new(name)?;
            let args = c.command_line()?;
            components.push((c, args));
        }
        let components = Arc::new(components);
        let holding = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let supervisor = {
            let (components, holding, stop) = (components.clone(), holding.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    relaunch_dead(&components, holding.load(Ordering::SeqCst));
                    std::thread::sleep(Duration::from_millis(500));
                }
            })
        };
        Ok(Self {
            components,
            holding,
            stop,
            supervisor: Some(supervisor),
        })
    }

    fn apiserver(&self) -> Result<&(Component, Vec<String>)> {
        self.components
            .iter()
            .find(|(c, _)| c.name == "kube-apiserver")
            .context("no kube-apiserver")
    }

    /// SIGKILLs kube-apiserver (a crash, no graceful shutdown) and waits until it is gone and
    /// its port is free (the main thread shows as a zombie while others still hold the
    /// listener).
    pub fn kill_apiserver(&self) -> Result<()> {
        let (c, args) = self.apiserver()?;
        self.holding.store(true, Ordering::SeqCst);
        let pid = c.pid()?;
        signal(pid, "KILL")?;
        let address = address(args);
        let listening = || {
            address
                .as_ref()
                .is_some_and(|a| std::net::TcpStream::connect(a).is_ok())
        };
        let start = Instant::now();
        while alive(pid) || listening() {
            if start.elapsed() > Duration::from_secs(30) {
                bail!("kube-apiserver ({pid}) still running 30 s after SIGKILL");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// Starts kube-apiserver again with its arguments and waits for `/readyz`.
    pub fn start_apiserver(&self) -> Result<()> {
        let (c, args) = self.apiserver()?;
        c.launch(args)?;
        self.holding.store(false, Ordering::SeqCst);
        wait_api_ready(Duration::from_secs(120))
    }

    /// Kill, then start again: a crash and its restart.
    pub fn restart_apiserver(&self) -> Result<()> {
        self.kill_apiserver()?;
        self.start_apiserver()
    }
}

/// Where kube-apiserver serves (`--bind-address`, `--secure-port`; the last of each wins, as
/// for any flag given twice).
fn address(args: &[String]) -> Option<String> {
    let last = |flag: &str| {
        args.iter()
            .rev()
            .find_map(|a| a.strip_prefix(flag).map(str::to_string))
    };
    Some(format!(
        "{}:{}",
        last("--bind-address=").unwrap_or_else(|| "127.0.0.1".into()),
        last("--secure-port=")?
    ))
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(s) = self.supervisor.take() {
            let _ = s.join();
        }
        relaunch_dead(&self.components, false);
        if let Err(e) = wait_api_ready(Duration::from_secs(120)) {
            eprintln!("fault guard: {e}");
        }
        // The controllers follow the API server back; one that lost its lease meanwhile exits
        // a little later: look once more after their renew deadline.
        std::thread::sleep(Duration::from_secs(2));
        relaunch_dead(&self.components, false);
    }
}

/// etcd stopped with SIGSTOP until [`EtcdPause::resume`] or the guard's drop sends SIGCONT.
pub struct EtcdPause {
    pid: u32,
    paused: bool,
}

impl EtcdPause {
    pub fn pause() -> Result<Self> {
        let pid = Component::new("etcd")?.pid()?;
        signal(pid, "STOP")?;
        Ok(Self { pid, paused: true })
    }

    pub fn resume(&mut self) -> Result<()> {
        if self.paused {
            signal(self.pid, "CONT")?;
            self.paused = false;
        }
        wait_api_ready(Duration::from_secs(120))
    }
}

impl Drop for EtcdPause {
    fn drop(&mut self) {
        if self.paused {
            let _ = signal(self.pid, "CONT");
        }
        if let Err(e) = wait_api_ready(Duration::from_secs(120)) {
            eprintln!("fault guard: {e}");
        }
    }
}
