//! Admission control of the CPU work: one bounded queue in front of a fixed
//! set of worker threads.
//!
//! - Two classes, each first-in-first-out: **interactive** work (a single
//!   evaluation, a batch of one record: what a form sends while the
//!   clinician waits) is taken before **bulk** work (batches of several
//!   records, rekeying) — except that after [`INTERACTIVE_RUN`] interactive
//!   pieces in a row a waiting bulk piece gets its turn, so that a steady
//!   stream of forms cannot starve a batch or a registry's rekey. A bulk request is cut into chunks of
//!   [`CHUNK_EVALUATIONS`] evaluations, queued one after the other, so that
//!   interactive work waits for at most one chunk per worker and a single
//!   bulk request still uses every worker.
//! - The queue holds at most [`QueueConfig::max_queued_evaluations`]
//!   evaluations: a request that does not fit is answered at once with 503
//!   and `Retry-After` ([`ApiError::Overloaded`]) instead of waiting
//!   without bound.
//! - Work that waited longer than [`QueueConfig::max_wait_ms`] is not
//!   started: its request is answered 503 too, so every request is served
//!   or shed well within the form's 10 s timeout.
//! - Work whose request is gone (the client left, the request timed out)
//!   is skipped. A panic in the work answers 500; the worker lives.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::config::QueueConfig;
use crate::error::ApiError;

/// Evaluations per chunk of bulk work (about a few milliseconds of one core).
pub const CHUNK_EVALUATIONS: usize = 48;

/// Interactive pieces taken in a row while bulk work waits, before one
/// bulk piece.
pub const INTERACTIVE_RUN: u32 = 4;

/// `Retry-After` of a shed request, in seconds.
pub const RETRY_AFTER_SECONDS: u64 = 1;

/// Who waits for the work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// A person at a form: taken first.
    Interactive,
    /// Batches and rekeying: taken when no interactive work waits.
    Bulk,
}

/// One queued piece of work: runs it, sheds it, or finds its request gone.
trait Task: Send {
    /// Runs the work and sends its result.
    fn run(self: Box<Self>);
    /// Answers 503 without running the work.
    fn shed(self: Box<Self>);
    /// Whether nobody waits for the result any more.
    fn abandoned(&self) -> bool;
}

struct Work<T, F> {
    work: F,
    tx: oneshot::Sender<Result<T, ApiError>>,
}

impl<T, F> Task for Work<T, F>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, ApiError> + Send + 'static,
{
    fn run(self: Box<Self>) {
        let Work { work, tx } = *self;
        let result = catch_unwind(AssertUnwindSafe(work)).unwrap_or_else(|_| {
            tracing::error!("evaluation work panicked; answered 500");
            Err(ApiError::Internal)
        });
        let _ = tx.send(result);
    }

    fn shed(self: Box<Self>) {
        let _ = self.tx.send(Err(ApiError::Overloaded {
            retry_after: RETRY_AFTER_SECONDS,
        }));
    }

    fn abandoned(&self) -> bool {
        self.tx.is_closed()
    }
}

struct Job {
    cost: usize,
    queued_at: Instant,
    task: Box<dyn Task>,
}

#[derive(Default)]
struct Waiting {
    interactive: VecDeque<Job>,
    bulk: VecDeque<Job>,
    /// Evaluations waiting, both classes.
    evaluations: usize,
    /// Interactive pieces taken in a row while bulk work waited.
    run: u32,
    closed: bool,
}

struct Shared {
    waiting: Mutex<Waiting>,
    wake: Condvar,
    max_evaluations: usize,
    max_wait: Duration,
}

/// The evaluation queue and its workers. Dropping it lets the workers
/// finish what is queued and stop.
pub struct EvalQueue {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for EvalQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EvalQueue")
            .field("max_evaluations", &self.shared.max_evaluations)
            .field("max_wait", &self.shared.max_wait)
            .finish_non_exhaustive()
    }
}

impl EvalQueue {
    /// Starts the workers of `config` (one per core when `workers` is 0).
    pub fn start(config: &QueueConfig) -> anyhow::Result<Self> {
        let shared = Arc::new(Shared {
            waiting: Mutex::new(Waiting::default()),
            wake: Condvar::new(),
            max_evaluations: config.max_queued_evaluations,
            max_wait: Duration::from_millis(config.max_wait_ms),
        });
        let workers = match config.workers {
            0 => std::thread::available_parallelism().map_or(2, usize::from),
            n => n,
        };
        for i in 0..workers {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name(format!("pseudoform-ttp-eval-{i}"))
                .spawn(move || work_loop(&shared))?;
        }
        Ok(EvalQueue { shared })
    }

    /// Runs `work` (about `evaluations` evaluations) on a worker and waits
    /// for it without blocking the executor; 503 when the queue is full or
    /// the work waited too long.
    pub async fn run<T, F>(&self, class: Class, evaluations: usize, work: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce() -> Result<T, ApiError> + Send + 'static,
    {
        let mut results = self.run_all(class, vec![(evaluations, work)]).await?;
        results.pop().ok_or(ApiError::Internal)
    }

    /// Queues every piece of `works` (cost, work) together — all or none —
    /// one after the other in its class, and gives their results in order;
    /// the first error (503 for shed work) fails the whole.
    pub async fn run_all<T, F>(
        &self,
        class: Class,
        works: Vec<(usize, F)>,
    ) -> Result<Vec<T>, ApiError>
    where
        T: Send + 'static,
        F: FnOnce() -> Result<T, ApiError> + Send + 'static,
    {
        let total: usize = works.iter().map(|(cost, _)| *cost).sum();
        let mut receivers = Vec::with_capacity(works.len());
        {
            let mut waiting = self.shared.waiting.lock().map_err(|_| ApiError::Internal)?;
            // Work larger than the whole queue still runs when it is empty.
            if waiting.evaluations > 0
                && waiting.evaluations.saturating_add(total) > self.shared.max_evaluations
            {
                return Err(ApiError::Overloaded {
                    retry_after: RETRY_AFTER_SECONDS,
                });
            }
            let queued_at = Instant::now();
            for (cost, work) in works {
                let (tx, rx) = oneshot::channel();
                let job = Job {
                    cost,
                    queued_at,
                    task: Box::new(Work { work, tx }),
                };
                match class {
                    Class::Interactive => waiting.interactive.push_back(job),
                    Class::Bulk => waiting.bulk.push_back(job),
                }
                receivers.push(rx);
            }
            waiting.evaluations = waiting.evaluations.saturating_add(total);
        }
        self.shared.wake.notify_all();
        let mut results = Vec::with_capacity(receivers.len());
        for rx in receivers {
            results.push(rx.await.unwrap_or(Err(ApiError::Internal))?);
        }
        Ok(results)
    }
}

impl Drop for EvalQueue {
    fn drop(&mut self) {
        if let Ok(mut waiting) = self.shared.waiting.lock() {
            waiting.closed = true;
        }
        self.shared.wake.notify_all();
    }
}

/// A worker: takes interactive work first (but a bulk piece after
/// [`INTERACTIVE_RUN`] in a row), then bulk, in order of arrival.
fn work_loop(shared: &Shared) {
    loop {
        let job = {
            let Ok(mut waiting) = shared.waiting.lock() else {
                return;
            };
            loop {
                let bulk_turn = waiting.run >= INTERACTIVE_RUN && !waiting.bulk.is_empty();
                let next = if bulk_turn {
                    waiting.bulk.pop_front()
                } else {
                    let job = waiting.interactive.pop_front();
                    if job.is_some() && !waiting.bulk.is_empty() {
                        waiting.run += 1;
                    }
                    job
                };
                if bulk_turn || next.is_none() {
                    waiting.run = 0;
                }
                if let Some(job) = next.or_else(|| waiting.bulk.pop_front()) {
                    waiting.evaluations = waiting.evaluations.saturating_sub(job.cost);
                    break job;
                }
                if waiting.closed {
                    return;
                }
                waiting = match shared.wake.wait(waiting) {
                    Ok(w) => w,
                    Err(_) => return,
                };
            }
        };
        if job.task.abandoned() {
            continue;
        }
        if job.queued_at.elapsed() > shared.max_wait {
            job.task.shed();
        } else {
            job.task.run();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn config(workers: usize, max: usize, wait_ms: u64) -> QueueConfig {
        QueueConfig {
            workers,
            max_queued_evaluations: max,
            max_wait_ms: wait_ms,
        }
    }

    /// Occupies the queue's only worker until the returned sender is used.
    async fn hold_worker(
        queue: &Arc<EvalQueue>,
    ) -> (
        std::sync::mpsc::Sender<()>,
        tokio::task::JoinHandle<Result<(), ApiError>>,
    ) {
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let started = Arc::new(AtomicUsize::new(0));
        let blocker = {
            let queue = Arc::clone(queue);
            let started = Arc::clone(&started);
            tokio::spawn(async move {
                queue
                    .run(Class::Bulk, 1, move || {
                        started.store(1, Ordering::SeqCst);
                        hold.recv().ok();
                        Ok(())
                    })
                    .await
            })
        };
        while started.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        (release, blocker)
    }

    #[tokio::test]
    async fn interactive_work_overtakes_waiting_bulk_work() {
        let queue = Arc::new(EvalQueue::start(&config(1, 1000, 60_000)).unwrap());
        let order = Arc::new(Mutex::new(Vec::new()));
        // Hold the only worker until everything is queued.
        let (release, blocker) = hold_worker(&queue).await;
        let mut tasks = Vec::new();
        for (name, class) in [
            ("bulk-1", Class::Bulk),
            ("bulk-2", Class::Bulk),
            ("form-1", Class::Interactive),
            ("form-2", Class::Interactive),
            ("form-3", Class::Interactive),
            ("form-4", Class::Interactive),
            ("form-5", Class::Interactive),
            ("form-6", Class::Interactive),
        ] {
            let q = Arc::clone(&queue);
            let order = Arc::clone(&order);
            tasks.push(tokio::spawn(async move {
                q.run(class, 1, move || {
                    order.lock().unwrap().push(name);
                    Ok(())
                })
                .await
            }));
            // Queued in this order.
            while queue_len(&queue) < tasks.len() {
                tokio::task::yield_now().await;
            }
        }
        release.send(()).unwrap();
        blocker.await.unwrap().unwrap();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        // Forms first, but a batch gets a turn after INTERACTIVE_RUN of them.
        assert_eq!(
            *order.lock().unwrap(),
            vec!["form-1", "form-2", "form-3", "form-4", "bulk-1", "form-5", "form-6", "bulk-2"]
        );
    }

    fn queue_len(queue: &EvalQueue) -> usize {
        let w = queue.shared.waiting.lock().unwrap();
        w.interactive.len() + w.bulk.len()
    }

    #[tokio::test]
    async fn a_full_queue_sheds_and_late_work_is_not_started() {
        let queue = Arc::new(EvalQueue::start(&config(1, 10, 50)).unwrap());
        let (release, blocker) = hold_worker(&queue).await;
        let ran = Arc::new(AtomicUsize::new(0));
        let waiting = {
            let queue = Arc::clone(&queue);
            let ran = Arc::clone(&ran);
            tokio::spawn(async move {
                queue
                    .run(Class::Bulk, 8, move || {
                        ran.fetch_add(1, Ordering::SeqCst);
                        Ok(())
                    })
                    .await
            })
        };
        while queue_len(&queue) < 1 {
            tokio::task::yield_now().await;
        }
        // 8 waiting + 3 > 10: refused at once.
        let refused = queue.run(Class::Interactive, 3, || Ok(())).await;
        assert_eq!(refused, Err(ApiError::Overloaded { retry_after: 1 }));
        // The waiting work outlives max_wait before the worker is free.
        tokio::time::sleep(Duration::from_millis(120)).await;
        release.send(()).unwrap();
        blocker.await.unwrap().unwrap();
        assert_eq!(
            waiting.await.unwrap(),
            Err(ApiError::Overloaded { retry_after: 1 })
        );
        assert_eq!(ran.load(Ordering::SeqCst), 0, "shed work is not started");
        // A panic is a 500 and the worker goes on.
        #[allow(clippy::panic)]
        let panicked = queue
            .run(Class::Interactive, 1, || -> Result<(), ApiError> {
                panic!("a bug")
            })
            .await;
        assert_eq!(panicked, Err(ApiError::Internal));
        assert_eq!(queue.run(Class::Interactive, 1, || Ok(7)).await, Ok(7));
    }
}
