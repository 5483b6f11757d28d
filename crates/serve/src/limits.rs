//! What a request and the whole server may take (memory, time, connections), and the
//! admission of model work under those budgets.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// One mebibyte.
pub(crate) const MIB: u64 = 1 << 20;

/// The budgets of a server. Every default is documented with its field; the `serve` example
/// has a flag for each.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Limits {
    /// The memory the whole server may use, in bytes. Default: 2 GiB. Model work is admitted
    /// against it less a reserve for the server itself (its loaded models, connections and
    /// upload buffers: a quarter of it, at most 512 MiB).
    pub memory: u64,
    /// The memory one request's model work may hold at once, in bytes. Default: 512 MiB.
    /// Samples are generated in chunks that fit it; a request of which not even one sample
    /// fits is refused with a 400 that says why.
    pub request_memory: u64,
    /// Model calls that may wait for memory or a core. Default: 256. One more gets a 429 with
    /// `Retry-After`.
    pub queue: usize,
    /// Model calls at work at once. Default: the machine's cores (more would only share them).
    pub cores: usize,
    /// The longest any request may take, from its first byte to its answer. Default: 120 s.
    /// Past it the request gets a 503 and its work stops.
    pub deadline: Duration,
    /// How long a connection may take to send a request's headers, counted from when the
    /// server waits for them: an idle keep-alive connection is closed after it too. Default:
    /// 10 s.
    pub header_timeout: Duration,
    /// The longest pause between two pieces of a request's body. Default: 30 s.
    pub body_timeout: Duration,
    /// Connections open at once; the next waits to be accepted. Default: 512, and never more
    /// than the process may open files (less 64 for the data folder).
    pub connections: usize,
    /// The longest prompt, in tokens (cl100k): 16,384, the context of `babbage-002` and
    /// `davinci-002`. The drum GPT reads the last half of its own context of it; the Markov
    /// model learns from all of it.
    pub prompt_tokens: u64,
    /// The largest JSON body (completions, chat completions, jobs), in bytes. Default: 1 MiB.
    pub json_body: usize,
    /// Uploads at once; one more gets a 429 with `Retry-After`. Default: 4.
    pub uploads: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            memory: 2048 * MIB,
            request_memory: 512 * MIB,
            queue: 256,
            cores: std::thread::available_parallelism().map_or(2, |n| n.get()),
            deadline: Duration::from_secs(120),
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            connections: 512,
            prompt_tokens: 16_384,
            json_body: 1 << 20,
            uploads: 4,
        }
    }
}

impl Limits {
    /// The memory model work may hold, in MiB: the budget less the server's own reserve.
    pub(crate) fn work_mib(&self) -> u32 {
        let reserve = (self.memory / 4).min(512 * MIB);
        u32::try_from((self.memory - reserve) / MIB).unwrap_or(u32::MAX).max(1)
    }

    /// The connection limit, within the process's limit of open files (Linux reports it in
    /// `/proc/self/limits`; elsewhere the setting stands).
    pub(crate) fn connection_limit(&self) -> usize {
        let files = std::fs::read_to_string("/proc/self/limits").ok().and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3))
                .and_then(|soft| soft.parse::<usize>().ok())
        });
        match files {
            Some(files) => self.connections.min(files.saturating_sub(64).max(1)),
            None => self.connections,
        }
        .max(1)
    }
}

/// Why model work was not admitted.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// It needs more than the whole budget: it never fits.
    TooLarge { mib: u32, budget: u32 },
    /// The queue is full: the client should come back.
    Busy,
}

/// The admission of model work: memory (in MiB) and a core for each call, with a bounded
/// queue of calls waiting.
pub(crate) struct Admission {
    memory: Arc<Semaphore>,
    budget: u32,
    cores: Arc<Semaphore>,
    waiting: AtomicUsize,
    queue: usize,
}

/// What an admitted call holds until it ends (dropped when the work is done, even if its
/// client has gone before).
pub(crate) struct Ticket {
    memory: OwnedSemaphorePermit,
    mib: u32,
    _core: OwnedSemaphorePermit,
}

/// The admission a request keeps across its calls (the chunks of its samples, the prompts of
/// a list): once its first call is admitted, the next ones reuse its core and memory, so that
/// a request that has begun is never refused half-way because another took the core between
/// two of its calls.
#[derive(Default)]
pub(crate) struct Held(Option<Arc<Ticket>>);

impl Admission {
    pub(crate) fn new(limits: &Limits) -> Admission {
        let budget = limits.work_mib();
        Admission {
            memory: Arc::new(Semaphore::new(budget as usize)),
            budget,
            cores: Arc::new(Semaphore::new(limits.cores.max(1))),
            waiting: AtomicUsize::new(0),
            queue: limits.queue,
        }
    }

    /// Waits for `mib` of memory and a core, unless the queue is full or it could never fit.
    pub(crate) async fn admit(&self, mib: u32) -> Result<Ticket, Refusal> {
        let mib = mib.max(1);
        if mib > self.budget {
            return Err(Refusal::TooLarge { mib, budget: self.budget });
        }
        // Admitted at once when both are free; otherwise a place in the queue, if one is left.
        if let Ok(memory) = self.memory.clone().try_acquire_many_owned(mib)
            && let Ok(core) = self.cores.clone().try_acquire_owned()
        {
            return Ok(Ticket { memory, mib, _core: core });
        }
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.queue {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(Refusal::Busy);
        }
        struct Waiting<'a>(&'a AtomicUsize);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::AcqRel);
            }
        }
        let _waiting = Waiting(&self.waiting);
        // The semaphores are never closed.
        let memory =
            self.memory.clone().acquire_many_owned(mib).await.map_err(|_| Refusal::Busy)?;
        let core = self.cores.clone().acquire_owned().await.map_err(|_| Refusal::Busy)?;
        Ok(Ticket { memory, mib, _core: core })
    }

    /// Admits the next call of a request that holds `held`: with what it holds if that is
    /// `mib` or more, with more memory if it is free now, and otherwise (what it held given
    /// back first, so that no two waits can block each other) like any call, by [`admit`].
    ///
    /// [`admit`]: Admission::admit
    pub(crate) async fn admit_held(
        &self,
        held: &mut Held,
        mib: u32,
    ) -> Result<Arc<Ticket>, Refusal> {
        let mib = mib.max(1);
        if let Some(ticket) = held.0.as_mut() {
            let enough = match Arc::get_mut(ticket) {
                Some(t) if t.mib < mib && mib <= self.budget => {
                    match self.memory.clone().try_acquire_many_owned(mib - t.mib) {
                        Ok(more) => {
                            t.memory.merge(more);
                            t.mib = mib;
                            true
                        }
                        Err(_) => false,
                    }
                }
                _ => ticket.mib >= mib,
            };
            if enough {
                return Ok(Arc::clone(ticket));
            }
        }
        held.0 = None;
        let ticket = Arc::new(self.admit(mib).await?);
        held.0 = Some(Arc::clone(&ticket));
        Ok(ticket)
    }
}

/// A flag that is set when it is dropped: a request's handler holds it, and its model work
/// (on another thread) reads it, so that the work stops when the client has gone or the
/// deadline has passed and the handler is dropped.
pub(crate) struct CancelOnDrop(pub Arc<AtomicBool>);

impl CancelOnDrop {
    pub(crate) fn new() -> CancelOnDrop {
        CancelOnDrop(Arc::new(AtomicBool::new(false)))
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One core, no queue, 1,536 MiB of work memory (2 GiB less the reserve).
    fn admission() -> Admission {
        Admission::new(&Limits { cores: 1, queue: 0, ..Limits::default() })
    }

    #[tokio::test]
    async fn a_request_that_has_begun_keeps_its_core_between_calls() {
        let a = admission();
        let mut held = Held::default();
        // The first call is admitted, runs (its clone of the ticket) and ends.
        drop(a.admit_held(&mut held, 100).await.expect("the first call"));
        // Between two calls of the request, another request is refused: the core is held.
        assert!(matches!(a.admit(10).await, Err(Refusal::Busy)));
        // The next call reuses what is held, or grows it while memory is free.
        let same = a.admit_held(&mut held, 50).await.expect("a smaller call");
        assert_eq!(same.mib, 100);
        drop(same);
        let grown = a.admit_held(&mut held, 1000).await.expect("a larger call");
        assert_eq!(grown.mib, 1000);
        assert_eq!(a.memory.available_permits(), 1536 - 1000);
        drop(grown);
        // When the request ends, all it held is given back.
        drop(held);
        assert_eq!(a.memory.available_permits(), 1536);
        assert!(a.admit(10).await.is_ok());
    }

    #[tokio::test]
    async fn a_call_larger_than_the_budget_is_refused_and_gives_back_what_was_held() {
        let a = admission();
        let mut held = Held::default();
        drop(a.admit_held(&mut held, 100).await.expect("the first call"));
        let refusal = a.admit_held(&mut held, 4096).await.err();
        assert!(matches!(refusal, Some(Refusal::TooLarge { mib: 4096, budget: 1536 })));
        assert_eq!(a.memory.available_permits(), 1536);
    }
}
