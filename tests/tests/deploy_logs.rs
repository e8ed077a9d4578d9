//! Log lines, end to end: `logs PROJECT` and `logs PROJECT -f`, each shown printing a line the
//! test wrote. (`deploy --follow` and `logs-builder` print a real build's log on the real node:
//! `real_logs.rs`.)
//!
//! KWOK serves each test's log file for the pods of its namespace (`deploy_support::served_logs`).

mod deploy_support;

use anyhow::{Context, Result, bail, ensure};
use deploy_support::served_logs::{LogFile, ServedLogs};
use deploy_support::{Env, example_copy, jockey_command};
use jockey_e2e::client;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// How long a log line may take to show up (bounded waits, no assertion on the time taken).
const LINE_WAIT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------------
// A plugin run whose output the test reads while it runs.
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Stream {
    Stdout,
    Stderr,
}

/// A running `kubectl-jockey`; killed on drop.
struct Live {
    child: Child,
    lines: Receiver<(Stream, String)>,
    stdout: String,
    stderr: String,
    closed: bool,
}

impl Live {
    fn spawn(mut cmd: Command) -> Result<Self> {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().context("starting kubectl-jockey")?;
        let (tx, rx) = mpsc::channel();
        let out = child.stdout.take().context("no stdout pipe")?;
        let err = child.stderr.take().context("no stderr pipe")?;
        let tx2 = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send((Stream::Stdout, line)).is_err() {
                    break;
                }
            }
        });
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if tx2.send((Stream::Stderr, line)).is_err() {
                    break;
                }
            }
        });
        Ok(Self {
            child,
            lines: rx,
            stdout: String::new(),
            stderr: String::new(),
            closed: false,
        })
    }

    fn all(&self) -> String {
        format!("stdout:\n{}\nstderr:\n{}", self.stdout, self.stderr)
    }

    /// Takes the next line, if one comes within `wait`; false once the output ended.
    fn pump(&mut self, wait: Duration) -> bool {
        match self.lines.recv_timeout(wait) {
            Ok((stream, line)) => {
                let buf = match stream {
                    Stream::Stdout => &mut self.stdout,
                    Stream::Stderr => &mut self.stderr,
                };
                buf.push_str(&line);
                buf.push('\n');
                true
            }
            Err(RecvTimeoutError::Timeout) => true,
            Err(RecvTimeoutError::Disconnected) => {
                self.closed = true;
                false
            }
        }
    }

    /// Waits until `stream` holds a line containing `needle`; fails, with all output so far, if
    /// none comes within `timeout` or the command ends first.
    fn wait_line(&mut self, stream: Stream, needle: &str, timeout: Duration) -> Result<()> {
        let start = Instant::now();
        loop {
            let buf = match stream {
                Stream::Stdout => &self.stdout,
                Stream::Stderr => &self.stderr,
            };
            if buf.lines().any(|l| l.contains(needle)) {
                return Ok(());
            }
            if start.elapsed() > timeout {
                bail!(
                    "no {stream:?} line containing {needle:?} within {timeout:?}\n{}",
                    self.all()
                );
            }
            if !self.pump(Duration::from_millis(200)) {
                bail!(
                    "the command ended before printing {needle:?} on {stream:?}\n{}",
                    self.all()
                );
            }
        }
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// The tests.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn logs_prints_and_follows_the_project_pods_log() -> Result<()> {
    let client = client().await?;
    let env = Env::new(&client, "logs-proj").await?;
    let token = env.ns.name.clone();
    let first = format!("agent started {token}");
    let second = format!("GET /health 200 {token}");
    let file = LogFile::new("logs-proj", &[&first, &second])?;
    let served = ServedLogs::create(&client, &env.ns.name, &file).await?;
    let dir = example_copy("logs-proj")?;

    let outcome = async {
        let run = env.jockey(&[
            "deploy",
            &dir.path().to_string_lossy(),
            "--project",
            "talky",
        ])?;
        ensure!(run.ok, "deploy failed: {}", run.all());

        // `logs`: the lines of the project's pod, then it ends.
        let logs = env.jockey(&["logs", "talky"])?;
        ensure!(logs.ok, "logs failed: {}", logs.all());
        ensure!(
            logs.stdout.contains(&first) && logs.stdout.contains(&second),
            "logs must print the pod's lines: {}",
            logs.all()
        );

        // `logs -f`: what is there, then a line written after it started.
        let cmd = jockey_command(
            &["logs", "talky", "-f", "-n", &env.ns.name],
            &env.builder.name,
            &[],
        )?;
        let mut live = Live::spawn(cmd)?;
        live.wait_line(Stream::Stdout, &second, LINE_WAIT)?;
        let later = format!("POST /chat 200 {token}");
        file.append(&later)?;
        live.wait_line(Stream::Stdout, &later, LINE_WAIT)?;
        // Still following: it is stopped here, not ended by itself.
        ensure!(
            live.child.try_wait()?.is_none(),
            "logs -f ended on its own: {}",
            live.all()
        );
        drop(live);
        Ok(())
    }
    .await;
    drop(served);
    env.cleanup().await?;
    outcome
}
