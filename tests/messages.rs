//! Talking to sessions: ordered delivery, calls and their failures, undeliverable
//! messages handed back, stop priority over queued messages, bounded mailboxes, and the
//! body's receive operations.

mod common;

use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use common::{guard, recv_within, Projects, TIMEOUT};
use session_supervisor::crossbeam_channel::{unbounded, Receiver, Select, Sender};
use session_supervisor::{
    stub, Error, ExitReason, InitError, RecvTimeoutError, ReplyTo, SessionBody, SessionContext,
    SessionHandle, SessionId, SessionKey, SessionSupervisor, TryRecvError,
};

/// A call timeout far longer than any wait of a passing test (a call that returns
/// within [`TIMEOUT`] did not wait for it), and shorter than the test guard, so that a
/// call that does wait for it fails as such.
const LONG_CALL: Duration = Duration::from_secs(30);

/// The requests understood by [`keeper`].
enum Request {
    /// Answer at once with the value.
    Answer(u32, ReplyTo<u32>),
    /// Keep the reply end without answering.
    Hold(ReplyTo<u32>),
    /// Answer every held reply end with the value.
    AnswerHeld(u32),
    /// Drop the reply end without answering.
    Refuse(ReplyTo<u32>),
}

/// A body serving [`Request`]s until stopped; tells `held` how many reply ends it holds
/// each time it keeps one.
fn keeper(held: Sender<usize>) -> impl FnMut(&SessionContext<Request>) + Send + 'static {
    move |ctx: &SessionContext<Request>| {
        let mut kept = Vec::new();
        while let Some(request) = ctx.recv() {
            match request {
                Request::Answer(value, reply) => reply.send(value),
                Request::Hold(reply) => {
                    kept.push(reply);
                    let _ = held.send(kept.len());
                }
                Request::AnswerHeld(value) => kept.drain(..).for_each(|reply| reply.send(value)),
                Request::Refuse(reply) => drop(reply),
            }
        }
    }
}

/// A supervisor of [`Request`]s with one [`keeper`] session.
fn keeper_session(
    projects: &Projects,
) -> (
    SessionSupervisor<Request>,
    SessionHandle<Request>,
    Receiver<usize>,
) {
    let sup = common::builder().messages::<Request>().build();
    let (held_tx, held_rx) = unbounded();
    let handle = sup
        .start_session(projects.session(0), keeper(held_tx))
        .unwrap();
    (sup, handle, held_rx)
}

/// A body that waits until a message is queued without taking it, tells `queued`, then
/// idles until stopped: the message is still in the mailbox when the session ends.
fn never_reads(queued: Sender<()>) -> impl FnMut(&SessionContext<Request>) + Send + 'static {
    move |ctx: &SessionContext<Request>| {
        let mut select = Select::new();
        select.recv(ctx.control());
        select.ready();
        let _ = queued.send(());
        ctx.wait_for_stop();
    }
}

fn assert_session_gone(error: &Error, expected: SessionId) {
    match error {
        Error::SessionGone { id } => assert_eq!(*id, expected),
        other => panic!("expected SessionGone for {expected}, got {other:?}"),
    }
}

fn assert_no_reply(error: &Error, expected: SessionId) {
    match error {
        Error::NoReply { id } => assert_eq!(*id, expected),
        other => panic!("expected NoReply for {expected}, got {other:?}"),
    }
}

fn assert_not_found(error: &Error, expected: SessionId) {
    match error {
        Error::NotFound {
            key: SessionKey::Id(id),
        } => assert_eq!(*id, expected),
        other => panic!("expected NotFound for {expected}, got {other:?}"),
    }
}

#[test]
fn messages_from_several_senders_all_arrive_in_per_sender_order() {
    guard!(move || {
        const SENDERS: usize = 4;
        const PER_SENDER: u32 = 2_500;
        let projects = Projects::new(1);
        let sup = common::builder().messages::<(usize, u32)>().build();
        let (out_tx, out_rx) = unbounded();
        let handle = sup
            .start_session(projects.session(0), stub::echo(out_tx, |m| m))
            .unwrap();
        let start = Arc::new(Barrier::new(SENDERS));
        let senders: Vec<_> = (0..SENDERS)
            .map(|sender| {
                let (handle, start) = (handle.clone(), Arc::clone(&start));
                thread::spawn(move || {
                    start.wait();
                    for seq in 0..PER_SENDER {
                        handle.send((sender, seq)).unwrap();
                    }
                })
            })
            .collect();
        senders.into_iter().for_each(|s| s.join().unwrap());

        let mut next = [0u32; SENDERS];
        for _ in 0..SENDERS * PER_SENDER as usize {
            let (sender, seq) = recv_within(&out_rx, "an echoed message");
            assert_eq!(seq, next[sender], "sender {sender} out of order");
            next[sender] += 1;
        }
        assert_eq!(next, [PER_SENDER; SENDERS]);
        handle.stop().unwrap();
        assert!(out_rx.try_recv().is_err(), "more messages than were sent");
    });
}

#[test]
fn call_returns_the_reply() {
    guard!(move || {
        let projects = Projects::new(1);
        let (_sup, handle, _held) = keeper_session(&projects);

        for value in [0, 7, 42] {
            let reply = handle.call(|r| Request::Answer(value, r), TIMEOUT);
            assert_eq!(reply.unwrap(), value);
        }
    });
}

#[test]
fn call_times_out_when_the_session_keeps_the_reply_end_unanswered() {
    guard!(move || {
        let projects = Projects::new(1);
        let (_sup, handle, held) = keeper_session(&projects);
        let timeout = Duration::from_millis(200);

        let began = Instant::now();
        let result = handle.call(Request::Hold, timeout);

        match result {
            Err(Error::CallTimeout { id, timeout: t }) => {
                assert_eq!(id, handle.id());
                assert_eq!(t, timeout);
            }
            other => panic!("expected CallTimeout, got {other:?}"),
        }
        assert!(began.elapsed() >= timeout, "gave up before the timeout");
        // The session really got the request and kept it: no other reason to fail.
        assert_eq!(recv_within(&held, "the request to be held"), 1);
    });
}

#[test]
fn a_reply_after_the_timeout_does_not_reach_a_later_call() {
    guard!(move || {
        let projects = Projects::new(1);
        let (_sup, handle, held) = keeper_session(&projects);
        let timed_out = handle.call(Request::Hold, Duration::from_millis(50));
        assert!(matches!(timed_out, Err(Error::CallTimeout { .. })));
        recv_within(&held, "the request to be held");

        handle.send(Request::AnswerHeld(1)).unwrap();
        let reply = handle.call(|r| Request::Answer(2, r), TIMEOUT);

        assert_eq!(reply.unwrap(), 2);
    });
}

#[test]
fn call_fails_at_once_when_the_session_drops_the_reply_end() {
    guard!(move || {
        let projects = Projects::new(1);
        let (_sup, handle, _held) = keeper_session(&projects);

        let began = Instant::now();
        let result = handle.call(Request::Refuse, LONG_CALL);

        assert_no_reply(&result.unwrap_err(), handle.id());
        assert!(began.elapsed() < TIMEOUT, "waited for the call timeout");
        // The session is unharmed.
        assert_eq!(handle.call(|r| Request::Answer(3, r), TIMEOUT).unwrap(), 3);
    });
}

#[test]
fn call_fails_at_once_when_the_session_ends_holding_the_request() {
    guard!(move || {
        let projects = Projects::new(1);
        let (sup, handle, held) = keeper_session(&projects);
        stop_during_a_call(&sup, &handle, || {
            recv_within(&held, "the request to be held");
        });
    });
}

#[test]
fn call_fails_at_once_when_the_session_ends_with_the_request_unread() {
    guard!(move || {
        let projects = Projects::new(1);
        let sup = common::builder().messages::<Request>().build();
        call_to_a_session_ending_with_the_request_unread(&projects, sup);
    });
}

#[test]
fn call_fails_at_once_when_a_bounded_session_ends_with_the_request_unread() {
    guard!(move || {
        let projects = Projects::new(1);
        let sup = common::builder()
            .messages::<Request>()
            .mailbox_capacity(4)
            .build();
        call_to_a_session_ending_with_the_request_unread(&projects, sup);
    });
}

/// Calls a [`never_reads`] session from another thread, stops the session once the
/// request is queued, and checks that the call fails with `NoReply` at once.
fn call_to_a_session_ending_with_the_request_unread(
    projects: &Projects,
    sup: SessionSupervisor<Request>,
) {
    let (queued_tx, queued_rx) = unbounded();
    let handle = sup
        .start_session(projects.session(0), never_reads(queued_tx))
        .unwrap();
    stop_during_a_call(&sup, &handle, || {
        recv_within(&queued_rx, "the request to be queued");
    });
}

/// Calls the session from another thread with a long timeout, waits for `request_in`
/// (the session has the request), stops the session, and checks that the call failed
/// with `NoReply` well before its timeout.
fn stop_during_a_call(
    sup: &SessionSupervisor<Request>,
    handle: &SessionHandle<Request>,
    request_in: impl FnOnce(),
) {
    let caller = {
        let handle = handle.clone();
        thread::spawn(move || {
            let began = Instant::now();
            (handle.call(Request::Hold, LONG_CALL), began.elapsed())
        })
    };
    request_in();

    sup.stop_session(handle.id()).unwrap();

    let (result, waited) = caller.join().unwrap();
    assert_no_reply(&result.unwrap_err(), handle.id());
    assert!(
        waited < TIMEOUT,
        "waited {waited:?} for a session that ended"
    );
}

#[test]
fn messages_still_queued_when_a_session_stops_are_dropped_with_it() {
    guard!(move || {
        let sup = common::builder().messages::<Sender<()>>().build();
        queued_message_dropped_by_stop(sup);
    });
}

#[test]
fn messages_still_queued_in_a_bounded_mailbox_are_dropped_when_the_session_stops() {
    guard!(move || {
        let sup = common::builder()
            .messages::<Sender<()>>()
            .mailbox_capacity(4)
            .build();
        queued_message_dropped_by_stop(sup);
    });
}

/// Queues a message in an idle session, stops it, and checks that the message was
/// dropped by the time the stop returned, while the handle still exists.
fn queued_message_dropped_by_stop(sup: SessionSupervisor<Sender<()>>) {
    let projects = Projects::new(1);
    let handle = sup
        .start_session(projects.session(0), stub::idle())
        .unwrap();
    // The message is the only sender of `dropped`: it disconnects when dropped.
    let (message, dropped) = unbounded::<()>();
    handle.send(message).unwrap();

    handle.stop().unwrap();

    assert_eq!(
        dropped.try_recv(),
        Err(session_supervisor::crossbeam_channel::TryRecvError::Disconnected),
        "the queued message outlived its session"
    );
}

#[test]
fn send_to_a_stopped_session_hands_the_message_back() {
    guard!(move || {
        let projects = Projects::new(1);
        let sup = common::builder().messages::<String>().build();
        let handle = sup
            .start_session(projects.session(0), stub::idle())
            .unwrap();
        handle.stop().unwrap();

        let sent = handle.send("by send".to_owned()).unwrap_err();
        assert_session_gone(sent.error(), handle.id());
        assert_eq!(sent.into_message(), "by send");

        let (error, message) = handle
            .try_send("by try_send".to_owned())
            .unwrap_err()
            .into_parts();
        assert_session_gone(&error, handle.id());
        assert_eq!(message, "by try_send");
    });
}

#[test]
fn send_to_a_session_that_ended_by_itself_hands_the_message_back() {
    guard!(move || {
        let projects = Projects::new(1);
        let sup = common::builder().messages::<u64>().build();
        let handle = sup
            .start_session(projects.session(0), stub::returns())
            .unwrap();
        let report = handle.wait_timeout(TIMEOUT).expect("the session ended");
        assert_eq!(report.reason(), &ExitReason::Normal);

        let err = handle.send(99).unwrap_err();

        assert!(matches!(err.error(), Error::SessionGone { .. }));
        assert_eq!(err.into_message(), 99);
    });
}

#[test]
fn send_error_converts_into_error_with_the_question_mark() {
    guard!(move || {
        fn send_one(handle: &SessionHandle<u8>) -> Result<(), Error> {
            handle.send(1)?;
            Ok(())
        }
        let projects = Projects::new(1);
        let sup = common::builder().messages::<u8>().build();
        let handle = sup
            .start_session(projects.session(0), stub::idle())
            .unwrap();
        assert!(send_one(&handle).is_ok());
        handle.stop().unwrap();

        assert_session_gone(&send_one(&handle).unwrap_err(), handle.id());
    });
}

#[test]
fn call_to_a_stopped_session_is_session_gone() {
    guard!(move || {
        let projects = Projects::new(1);
        let (_sup, handle, _held) = keeper_session(&projects);
        handle.stop().unwrap();

        let began = Instant::now();
        let result = handle.call(|r| Request::Answer(1, r), LONG_CALL);

        assert_session_gone(&result.unwrap_err(), handle.id());
        assert!(began.elapsed() < TIMEOUT);
    });
}

#[test]
fn stop_overtakes_10_000_queued_messages() {
    guard!(move || {
        let projects = Projects::new(1);
        // A zero stop timeout makes stop_session request the stop without waiting.
        let sup = common::builder()
            .messages::<u32>()
            .stop_timeout(Duration::ZERO)
            .build();
        let (gate_tx, gate_rx) = unbounded::<()>();
        let (count_tx, count_rx) = unbounded();
        let handle = sup
            .start_session(projects.session(0), move |ctx| {
                let _ = gate_rx.recv();
                let mut processed = 0usize;
                while ctx.recv().is_some() {
                    processed += 1;
                }
                let _ = count_tx.send(processed);
            })
            .unwrap();
        for n in 0..10_000 {
            handle.send(n).unwrap();
        }
        let stop = sup.stop_session(handle.id());
        assert!(matches!(stop, Err(Error::StopTimeout { .. })), "{stop:?}");

        drop(gate_tx);

        // The stop was requested before the body's first recv, which checks it first.
        assert_eq!(
            recv_within(&count_rx, "the number of messages processed"),
            0
        );
        let report = handle.wait_timeout(TIMEOUT).expect("the session ended");
        assert_eq!(report.reason(), &ExitReason::Stopped);
    });
}

#[test]
fn stop_during_a_message_skips_the_rest_of_the_queue() {
    guard!(move || {
        let projects = Projects::new(1);
        let sup = common::builder()
            .messages::<u32>()
            .stop_timeout(Duration::ZERO)
            .build();
        let (busy_tx, busy_rx) = unbounded();
        let (gate_tx, gate_rx) = unbounded::<()>();
        let (count_tx, count_rx) = unbounded();
        let handle = sup
            .start_session(projects.session(0), move |ctx| {
                let mut processed = 0usize;
                while let Some(n) = ctx.recv() {
                    if n == 0 {
                        let _ = busy_tx.send(());
                        let _ = gate_rx.recv();
                    }
                    processed += 1;
                }
                let _ = count_tx.send(processed);
            })
            .unwrap();
        handle.send(0).unwrap();
        recv_within(&busy_rx, "the body to work on the first message");
        for n in 1..10_000 {
            handle.send(n).unwrap();
        }
        assert!(sup.stop_session(handle.id()).is_err());

        drop(gate_tx);

        assert_eq!(
            recv_within(&count_rx, "the number of messages processed"),
            1
        );
    });
}

#[test]
fn try_send_to_a_full_mailbox_hands_the_message_back_and_stop_still_works() {
    guard!(move || {
        let projects = Projects::new(1);
        let sup = common::builder()
            .messages::<u32>()
            .mailbox_capacity(2)
            .build();
        let handle = sup
            .start_session(projects.session(0), stub::idle())
            .unwrap();
        handle.try_send(1).unwrap();
        handle.try_send(2).unwrap();

        let full = handle.try_send(3).unwrap_err();
        assert!(matches!(full.error(), Error::MailboxFull { id } if *id == handle.id()));
        assert_eq!(full.into_message(), 3);
        let full = sup.try_send(handle.id(), 4).unwrap_err();
        assert!(matches!(full.error(), Error::MailboxFull { .. }));
        assert_eq!(full.into_message(), 4);

        // Within the 5 s stop timeout, or this is a StopTimeout error.
        let report = handle.stop().unwrap();
        assert_eq!(report.reason(), &ExitReason::Stopped);
    });
}

#[test]
fn a_send_blocked_on_a_full_mailbox_gets_its_message_back_when_the_session_stops() {
    guard!(move || {
        let projects = Projects::new(1);
        let sup = common::builder()
            .messages::<u32>()
            .mailbox_capacity(1)
            .build();
        let handle = sup
            .start_session(projects.session(0), stub::idle())
            .unwrap();
        handle.send(1).unwrap();
        let sender = {
            let handle = handle.clone();
            thread::spawn(move || handle.send(2))
        };

        handle.stop().unwrap();

        let err = sender.join().unwrap().unwrap_err();
        assert!(matches!(err.error(), Error::SessionGone { .. }));
        assert_eq!(err.into_message(), 2);
    });
}

#[test]
fn call_to_a_full_mailbox_times_out() {
    guard!(move || {
        let projects = Projects::new(1);
        let sup = common::builder()
            .messages::<Request>()
            .mailbox_capacity(1)
            .build();
        let (queued_tx, queued_rx) = unbounded();
        let handle = sup
            .start_session(projects.session(0), never_reads(queued_tx))
            .unwrap();
        handle.send(Request::AnswerHeld(0)).unwrap();
        recv_within(&queued_rx, "the mailbox to fill");

        let result = handle.call(|r| Request::Answer(1, r), Duration::from_millis(100));

        assert!(
            matches!(result, Err(Error::CallTimeout { .. })),
            "{result:?}"
        );
    });
}

#[test]
fn send_and_try_send_by_id_reach_the_session() {
    guard!(move || {
        let projects = Projects::new(1);
        let sup = common::builder().messages::<u32>().build();
        let (out_tx, out_rx) = unbounded();
        let handle = sup
            .start_session(projects.session(0), stub::echo(out_tx, |n| n))
            .unwrap();

        sup.send(handle.id(), 1).unwrap();
        sup.try_send(handle.id(), 2).unwrap();

        assert_eq!(recv_within(&out_rx, "the message sent by id"), 1);
        assert_eq!(recv_within(&out_rx, "the message try_sent by id"), 2);
    });
}

#[test]
fn call_by_id_returns_the_reply() {
    guard!(move || {
        let projects = Projects::new(1);
        let (sup, handle, _held) = keeper_session(&projects);

        let reply = sup.call(handle.id(), |r| Request::Answer(5, r), TIMEOUT);

        assert_eq!(reply.unwrap(), 5);
    });
}

#[test]
fn send_and_call_by_unknown_id_are_not_found_and_hand_the_message_back() {
    guard!(move || {
        let sup = common::builder().messages::<String>().build();
        let unknown = SessionId::new();

        let (error, message) = sup
            .send(unknown, "sent".to_owned())
            .unwrap_err()
            .into_parts();
        assert_not_found(&error, unknown);
        assert_eq!(message, "sent");

        let (error, message) = sup
            .try_send(unknown, "tried".to_owned())
            .unwrap_err()
            .into_parts();
        assert_not_found(&error, unknown);
        assert_eq!(message, "tried");

        let called = sup.call(unknown, |_: ReplyTo<()>| "called".to_owned(), LONG_CALL);
        assert_not_found(&called.unwrap_err(), unknown);
    });
}

#[test]
fn send_by_id_after_the_session_stopped_is_not_found() {
    guard!(move || {
        let projects = Projects::new(1);
        let sup = common::builder().messages::<u32>().build();
        let handle = sup
            .start_session(projects.session(0), stub::idle())
            .unwrap();
        handle.stop().unwrap();

        let err = sup.send(handle.id(), 8).unwrap_err();

        assert!(matches!(err.error(), Error::NotFound { .. }), "{err:?}");
        assert_eq!(err.into_message(), 8);
    });
}

/// What a scripted body saw from one receive operation.
#[derive(Debug, PartialEq)]
enum Seen {
    Try(Result<u32, TryRecvError>),
    Timed(Result<u32, RecvTimeoutError>),
    Recv(Option<u32>),
}

#[test]
fn try_recv_and_recv_timeout_report_empty_timeout_message_and_stopped() {
    guard!(move || {
        let projects = Projects::new(1);
        let sup = common::builder()
            .messages::<u32>()
            .stop_timeout(Duration::ZERO)
            .build();
        let (seen_tx, seen) = unbounded();
        let (step_tx, step_rx) = unbounded::<()>();
        let handle = sup
            .start_session(projects.session(0), move |ctx| {
                let see = |what| seen_tx.send(what).unwrap();
                see(Seen::Try(ctx.try_recv()));
                see(Seen::Timed(ctx.recv_timeout(Duration::from_millis(20))));
                step_rx.recv().unwrap();
                see(Seen::Try(ctx.try_recv()));
                see(Seen::Timed(ctx.recv_timeout(TIMEOUT)));
                step_rx.recv().unwrap();
                see(Seen::Try(ctx.try_recv()));
                see(Seen::Timed(ctx.recv_timeout(TIMEOUT)));
                see(Seen::Recv(ctx.recv()));
            })
            .unwrap();
        let next = || recv_within(&seen, "the body's next receive");

        assert_eq!(next(), Seen::Try(Err(TryRecvError::Empty)));
        assert_eq!(next(), Seen::Timed(Err(RecvTimeoutError::Timeout)));
        handle.send(1).unwrap();
        step_tx.send(()).unwrap();
        assert_eq!(next(), Seen::Try(Ok(1)));
        // Sent while (or just before) the body waits in recv_timeout.
        handle.send(2).unwrap();
        assert_eq!(next(), Seen::Timed(Ok(2)));

        // A queued message and a stop: the stop wins for every receive.
        handle.send(3).unwrap();
        assert!(sup.stop_session(handle.id()).is_err());
        step_tx.send(()).unwrap();
        assert_eq!(next(), Seen::Try(Err(TryRecvError::Stopped)));
        assert_eq!(next(), Seen::Timed(Err(RecvTimeoutError::Stopped)));
        assert_eq!(next(), Seen::Recv(None));
        let report = handle.wait_timeout(TIMEOUT).expect("the session ended");
        assert_eq!(report.reason(), &ExitReason::Stopped);
    });
}

#[test]
fn recv_timeout_returns_stopped_when_a_stop_comes_while_it_waits() {
    guard!(move || {
        let projects = Projects::new(1);
        let sup = common::builder().messages::<u32>().build();
        let (waiting_tx, waiting_rx) = unbounded();
        let (seen_tx, seen_rx) = unbounded();
        let handle = sup
            .start_session(projects.session(0), move |ctx| {
                waiting_tx.send(()).unwrap();
                seen_tx.send(ctx.recv_timeout(LONG_CALL)).unwrap();
            })
            .unwrap();
        recv_within(&waiting_rx, "the body to wait for a message");

        // Within the 5 s stop timeout: recv_timeout woke well before its 60 s.
        let report = handle.stop().unwrap();

        assert_eq!(report.reason(), &ExitReason::Stopped);
        assert_eq!(seen_rx.try_recv(), Ok(Err(RecvTimeoutError::Stopped)));
    });
}

/// What [`ReadsAcrossRestarts`] is told to do.
enum Step {
    Note(&'static str),
    Crash,
}

/// A body that reports each note with its restart count and panics on `Crash`; on a
/// restart its `init` tells `restarting` and waits for `gate`, holding the restart open.
struct ReadsAcrossRestarts {
    restarting: Sender<()>,
    gate: Receiver<()>,
    notes: Sender<(u32, &'static str)>,
}

impl SessionBody<Step> for ReadsAcrossRestarts {
    fn init(&mut self, ctx: &SessionContext<Step>) -> Result<(), InitError> {
        if ctx.restarts() > 0 {
            self.restarting.send(())?;
            self.gate.recv()?;
        }
        Ok(())
    }

    fn run(&mut self, ctx: &SessionContext<Step>) {
        while let Some(step) = ctx.recv() {
            match step {
                Step::Note(text) => self.notes.send((ctx.restarts(), text)).unwrap(),
                Step::Crash => panic!("crash on request"),
            }
        }
    }
}

#[test]
fn messages_sent_before_and_during_a_restart_are_read_by_the_next_run() {
    guard!(move || {
        let projects = Projects::new(1);
        let sup = common::builder().messages::<Step>().build();
        let (restarting, restarting_rx) = unbounded();
        let (gate_tx, gate) = unbounded();
        let (notes, notes_rx) = unbounded();
        let body = ReadsAcrossRestarts {
            restarting,
            gate,
            notes,
        };
        let handle = sup.start(projects.session(0)).body(body).unwrap();
        handle.send(Step::Note("first run")).unwrap();
        handle.send(Step::Crash).unwrap();
        handle
            .send(Step::Note("queued before the restart"))
            .unwrap();
        recv_within(&restarting_rx, "the restart to begin");

        handle.send(Step::Note("sent during the restart")).unwrap();
        gate_tx.send(()).unwrap();

        let next = || recv_within(&notes_rx, "a note");
        assert_eq!(next(), (0, "first run"));
        assert_eq!(next(), (1, "queued before the restart"));
        assert_eq!(next(), (1, "sent during the restart"));
        let report = handle.stop().unwrap();
        assert_eq!(report.restarts(), 1);
    });
}

#[test]
fn calls_from_several_threads_at_once_each_get_their_own_reply() {
    guard!(move || {
        const CALLERS: u32 = 4;
        const CALLS: u32 = 200;
        let projects = Projects::new(1);
        let (sup, handle, _held) = keeper_session(&projects);
        let sup = Arc::new(sup);
        let start = Arc::new(Barrier::new(CALLERS as usize));
        let callers: Vec<_> = (0..CALLERS)
            .map(|caller| {
                let (sup, handle) = (Arc::clone(&sup), handle.clone());
                let start = Arc::clone(&start);
                thread::spawn(move || {
                    start.wait();
                    for call in 0..CALLS {
                        let value = caller * 1_000 + call;
                        let ask = |r| Request::Answer(value, r);
                        // Half the callers go through the supervisor, by id.
                        let reply = if caller % 2 == 0 {
                            handle.call(ask, TIMEOUT)
                        } else {
                            sup.call(handle.id(), ask, TIMEOUT)
                        };
                        assert_eq!(reply.unwrap(), value, "caller {caller}");
                    }
                })
            })
            .collect();

        for caller in callers {
            caller.join().unwrap();
        }
    });
}
