//! `call` and `send`: talking to a session, against bare crossbeam channels doing the
//! same work.
//!
//! - `call/session`: `handle.call` to a session whose body answers from `ctx.recv()`.
//!   `call/bare`: a thread blocked on a crossbeam `recv` of requests, each carrying a
//!   fresh one-slot reply channel, as `call` creates one. The ratio is what the mailbox,
//!   the stop check before each receive and the select on mailbox and control add.
//! - `send/session`: `handle.send` of a batch of messages to a body that counts them,
//!   then one call so the batch is known to be received; `send/bare` does the same over
//!   a bare channel. Reported per batch of `BATCH` messages.
//! - `stats/*`: reading a session's stats without a message (see `stats`).

mod common;

use std::thread::{self, JoinHandle};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use crossbeam_channel::{bounded, unbounded, Sender};
use session_supervisor::{stub, ReplyTo, SessionHandle, SessionSupervisor};

use common::TempDirs;

const BATCH: u64 = 1000;
const TIMEOUT: Duration = Duration::from_secs(10);

/// What the sessions (and the bare thread) understand.
enum Msg {
    Add(u64),
    Total(ReplyTo<u64>),
}

/// The bare twin of `Msg`, with a plain channel for the reply.
enum BareMsg {
    Add(u64),
    Total(Sender<u64>),
}

/// A bare thread answering `BareMsg`s until its channel closes.
fn bare_server() -> (Sender<BareMsg>, JoinHandle<()>) {
    let (tx, rx) = unbounded::<BareMsg>();
    let thread = thread::spawn(move || {
        let mut total = 0;
        for msg in rx {
            match msg {
                BareMsg::Add(n) => total += n,
                BareMsg::Total(reply) => drop(reply.send(total)),
            }
        }
    });
    (tx, thread)
}

fn bare_call(server: &Sender<BareMsg>) -> u64 {
    let (reply_tx, reply_rx) = bounded(1);
    server.send(BareMsg::Total(reply_tx)).unwrap();
    reply_rx.recv_timeout(TIMEOUT).unwrap()
}

fn call_and_send(c: &mut Criterion) {
    let dirs = TempDirs::new("call", 1);
    let sup = SessionSupervisor::builder().messages::<Msg>().build();
    let session = dirs.sessions().remove(0);
    let handle = sup
        .start_session(session, |ctx| {
            let mut total = 0;
            while let Some(msg) = ctx.recv() {
                match msg {
                    Msg::Add(n) => total += n,
                    Msg::Total(reply) => reply.send(total),
                }
            }
        })
        .unwrap();
    let (server, thread) = bare_server();

    let mut group = c.benchmark_group("call");
    group.bench_function("session", |b| {
        b.iter(|| handle.call(Msg::Total, TIMEOUT).unwrap())
    });
    group.bench_function("bare", |b| b.iter(|| bare_call(&server)));
    group.finish();

    let mut group = c.benchmark_group("send");
    group.throughput(Throughput::Elements(BATCH));
    group.bench_function("session", |b| {
        b.iter(|| {
            for n in 0..BATCH {
                handle.send(Msg::Add(n)).unwrap();
            }
            handle.call(Msg::Total, TIMEOUT).unwrap()
        })
    });
    group.bench_function("bare", |b| {
        b.iter(|| {
            for n in 0..BATCH {
                server.send(BareMsg::Add(n)).unwrap();
            }
            bare_call(&server)
        })
    });
    group.finish();

    stats(c, &handle);
    sup.stop_session(handle.id()).unwrap();
    drop(server);
    thread.join().unwrap();
}

/// `stats/session`: `handle.stats()`, read from the session's counters, against
/// `call/session`, the round trip it saves. `stats/snapshot_10`: `snapshot()` of 10
/// running sessions, against `list_all()` of the same (the metadata alone).
fn stats(c: &mut Criterion, handle: &SessionHandle<Msg>) {
    let dirs = TempDirs::new("stats", 10);
    let sup = SessionSupervisor::builder().max_sessions(10).build();
    for session in dirs.sessions() {
        sup.start_session(session, stub::idle()).unwrap();
    }
    let mut group = c.benchmark_group("stats");
    group.bench_function("session", |b| b.iter(|| handle.stats()));
    group.bench_function("snapshot_10", |b| b.iter(|| sup.snapshot()));
    group.bench_function("list_all_10", |b| b.iter(|| sup.list_all()));
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = call_and_send
}
criterion_main!(benches);
