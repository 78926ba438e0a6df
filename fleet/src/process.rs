//! Processes that end with their owner: one killed when its handle is dropped, or a group
//! stopped together.

use std::process::{Child, Command, ExitStatus};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// A process that could not be started.
#[derive(Debug, thiserror::Error)]
#[error("cannot start {name}")]
pub struct SpawnError {
    /// The process's name.
    pub name: String,
    /// Why.
    #[source]
    pub source: std::io::Error,
}

/// A named child process, killed (SIGKILL) when dropped.
#[derive(Debug)]
pub struct Process {
    name: String,
    child: Child,
}

impl Process {
    /// Starts `command` as `name`.
    pub fn spawn(name: &str, command: &mut Command) -> Result<Self, SpawnError> {
        let child = command.spawn().map_err(|source| SpawnError {
            name: name.to_owned(),
            source,
        })?;
        Ok(Self {
            name: name.to_owned(),
            child,
        })
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// How it ended, when it has.
    pub fn ended(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// SIGKILL, with no chance to flush or close anything; waits for it to end.
    pub fn kill(&mut self) -> std::io::Result<ExitStatus> {
        self.child.kill()?;
        self.child.wait()
    }

    /// SIGTERM: asks it to end.
    fn terminate(&self) {
        let _ = rustix::process::kill_process(
            rustix::process::Pid::from_child(&self.child),
            rustix::process::Signal::TERM,
        );
    }

    /// Waits until it ends or `deadline` passes; whether it ended.
    fn ended_by(&mut self, deadline: Instant) -> bool {
        loop {
            if self.ended().is_some() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Processes started together and stopped together; clones share them, so a signal handler
/// can stop what the main thread started.
#[derive(Debug, Clone, Default)]
pub struct Group(Arc<Mutex<Vec<Process>>>);

impl Group {
    /// Starts `command` as `name`, one of the group.
    pub fn spawn(&self, name: &str, command: &mut Command) -> Result<(), SpawnError> {
        let process = Process::spawn(name, command)?;
        self.lock().push(process);
        Ok(())
    }

    /// Each process's name and id, in the order they started.
    pub fn ids(&self) -> Vec<(String, u32)> {
        self.lock()
            .iter()
            .map(|process| (process.name.clone(), process.id()))
            .collect()
    }

    /// The first process that has ended, with how.
    pub fn ended(&self) -> Option<(String, ExitStatus)> {
        self.lock()
            .iter_mut()
            .find_map(|process| Some((process.name.clone(), process.ended()?)))
    }

    /// SIGTERM to every process (daemons drain and close their stores), SIGKILL to any still
    /// running `grace` later; waits for all, and empties the group.
    pub fn stop(&self, grace: Duration) {
        let mut processes = self.lock();
        for process in processes.iter() {
            process.terminate();
        }
        let deadline = Instant::now() + grace;
        for process in processes.iter_mut() {
            process.ended_by(deadline);
        }
        // Dropping kills what is left and reaps everything.
        processes.clear();
    }

    /// A guard that stops the group (with `grace`) when it is dropped, however its owner
    /// returns.
    pub fn stop_on_drop(&self, grace: Duration) -> StopOnDrop {
        StopOnDrop {
            group: self.clone(),
            grace,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Process>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Stops its group when dropped.
#[derive(Debug)]
pub struct StopOnDrop {
    group: Group,
    grace: Duration,
}

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.group.stop(self.grace);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::os::unix::process::ExitStatusExt;

    use super::*;

    fn sleeper() -> Command {
        let mut command = Command::new("sleep");
        command.arg("30");
        command
    }

    /// Whether `pid` is gone (or a zombie no one reaped).
    fn gone(pid: u32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |stat| {
            stat.rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
    }

    #[test]
    fn a_dropped_process_is_killed_and_a_killed_one_says_how() {
        let process = Process::spawn("sleep", &mut sleeper()).unwrap();
        let pid = process.id();
        assert!(!gone(pid));
        drop(process);
        assert!(gone(pid));
        let mut process = Process::spawn("sleep", &mut sleeper()).unwrap();
        assert_eq!(process.ended(), None);
        assert_eq!(process.kill().unwrap().signal(), Some(9));
    }

    #[test]
    fn a_group_terminates_then_kills_and_reports_who_ended() {
        let group = Group::default();
        group.spawn("sleep", &mut sleeper()).unwrap();
        // Ignores SIGTERM: only the SIGKILL after the grace ends it.
        group
            .spawn(
                "stubborn",
                Command::new("sh").args(["-c", "trap '' TERM; while :; do sleep 0.1; done"]),
            )
            .unwrap();
        group
            .spawn("quick", Command::new("sh").args(["-c", "exit 4"]))
            .unwrap();
        let ids = group.ids();
        assert_eq!(
            ids.iter()
                .map(|(name, _)| name.as_str())
                .collect::<Vec<_>>(),
            ["sleep", "stubborn", "quick"]
        );
        let started = Instant::now();
        let ended = loop {
            if let Some(ended) = group.ended() {
                break ended;
            }
            assert!(started.elapsed() < Duration::from_secs(10));
            std::thread::sleep(Duration::from_millis(10));
        };
        assert_eq!(ended.0, "quick");
        assert_eq!(ended.1.code(), Some(4));
        std::thread::sleep(Duration::from_millis(200)); // the trap is set
        let stopping = Instant::now();
        drop(group.stop_on_drop(Duration::from_millis(300)));
        assert!(stopping.elapsed() >= Duration::from_millis(300));
        assert!(ids.iter().all(|(_, pid)| gone(*pid)));
        assert!(group.ids().is_empty());
        let error = group
            .spawn("nothing", &mut Command::new("/nonexistent/veu"))
            .unwrap_err();
        assert_eq!(error.to_string(), "cannot start nothing");
    }
}
