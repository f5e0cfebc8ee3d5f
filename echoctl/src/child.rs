//! The processes echoctl starts beside the edge (`cargo lambda watch`, dynalite): each in its own
//! process group, killed with echoctl, its output read line by line.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::sync::Arc;

/// Where a child's output lines go.
pub type Lines = Arc<dyn Fn(&str) + Send + Sync>;

/// Lines to echoctl's standard error, each after `[label] `.
pub fn labelled(label: &'static str) -> Lines {
    Arc::new(move |line| eprintln!("[{label}] {line}"))
}

/// Puts `command`'s process in a group of its own, which [`kill_group`] ends, and makes the kernel
/// kill it when echoctl dies, so that a killed echoctl leaves nothing behind.
#[allow(unsafe_code)]
pub fn own_group(command: &mut Command) -> &mut Command {
    command.process_group(0);
    // SAFETY: the closure runs in the child between fork and exec and only calls prctl(2),
    // which is async-signal-safe and touches no memory of the parent.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    command
}

/// Kills `child`'s process group (cargo-lambda does not stop on SIGTERM, and its functions are
/// its children) and reaps it.
pub fn kill_group(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-s", "KILL", "--", &format!("-{}", child.id())])
        .status();
    let _ = child.wait();
}

/// Hands each line of `child`'s standard output and error to `lines`; the threads end with the
/// child's output.
pub fn forward(child: &mut Child, lines: Lines) -> Vec<std::thread::JoinHandle<()>> {
    let out: [Option<Box<dyn Read + Send>>; 2] = [
        child
            .stdout
            .take()
            .map(|o| Box::new(o) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|e| Box::new(e) as Box<dyn Read + Send>),
    ];
    out.into_iter()
        .flatten()
        .map(|stream| {
            let lines = lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    lines(&line);
                }
            })
        })
        .collect()
}
