//! Work that outlives the request that started it, such as delivering a
//! reset mail after `/iforgot` has answered. Tasks are counted so shutdown
//! (and tests) can wait until everything started has finished.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::watch;

#[derive(Clone)]
pub struct Background {
    in_flight: Arc<watch::Sender<usize>>,
}

impl Default for Background {
    fn default() -> Self {
        Self {
            in_flight: Arc::new(watch::Sender::new(0)),
        }
    }
}

impl Background {
    /// Runs `task` on the runtime. It must handle (log) its own errors.
    pub fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        self.in_flight.send_modify(|n| *n += 1);
        let done = Finished(self.in_flight.clone());
        tokio::spawn(async move {
            // Dropped when the task ends, also by panic.
            let _done = done;
            task.await;
        });
    }

    /// Waits until no task is running.
    pub async fn idle(&self) {
        let mut tasks = self.in_flight.subscribe();
        // The sender lives as long as `self`, so this cannot fail.
        let _ = tasks.wait_for(|&n| n == 0).await;
    }
}

struct Finished(Arc<watch::Sender<usize>>);

impl Drop for Finished {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n -= 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn idle_waits_for_every_task_including_panicking_ones() {
        let background = Background::default();
        let (release, wait) = tokio::sync::oneshot::channel::<()>();
        background.spawn(async move {
            let _ = wait.await;
        });
        background.spawn(async { panic!("a failing task still counts as finished") });
        let idle = background.idle();
        tokio::pin!(idle);
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(50), &mut idle)
                .await
                .is_err(),
            "idle returned while a task was still running"
        );
        release.send(()).unwrap();
        idle.await;
    }
}
