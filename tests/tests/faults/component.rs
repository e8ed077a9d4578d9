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

/// kube-apiserver killed and started again with the same arguments. The guard restarts it if a
/// test ends (or panics) while it is down.
pub struct ApiServer {
    component: Component,
    args: Vec<String>,
}

impl ApiServer {
    pub fn new() -> Result<Self> {
        let component = Component::new("kube-apiserver")?;
        let args = component.command_line()?;
        Ok(Self { component, args })
    }

    /// SIGKILLs it (a crash, no graceful shutdown) and waits until it is gone.
    pub fn kill(&self) -> Result<()> {
        let pid = self.component.pid()?;
        signal(pid, "KILL")?;
        let start = Instant::now();
        while alive(pid) {
            if start.elapsed() > Duration::from_secs(30) {
                bail!("kube-apiserver ({pid}) still running 30 s after SIGKILL");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// Starts it again and waits for `/readyz`.
    pub fn start(&self) -> Result<()> {
        self.component.launch(&self.args)?;
        wait_api_ready(Duration::from_secs(120))
    }

    /// Kill, then start again: a restart as a crash-looping or upgraded control plane does it.
    pub fn restart(&self) -> Result<()> {
        self.kill()?;
        self.start()
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        let running = self.component.pid().is_ok_and(alive);
        if !running {
            eprintln!("fault guard: kube-apiserver is down; starting it again");
            let _ = self.component.launch(&self.args);
        }
        if let Err(e) = wait_api_ready(Duration::from_secs(120)) {
            eprintln!("fault guard: {e}");
        }
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
