//! Conventions of the public types: which may cross or be shared between threads, and
//! that all of them print with `Debug`.

use std::fmt::Debug;

use session_supervisor::{
    AdmissionPolicy, Error, ExitReason, ExitReport, ReplyTo, Restart, RestartPolicy, SendError,
    Session, SessionEvent, SessionHandle, SessionId, SessionKey, SessionRegistry, SessionState,
    SessionStats, SessionSupervisor, ShutdownReport, Snapshot, Subscription, SupervisorBuilder,
};

fn send_sync<T: Send + Sync>() {}
fn debug<T: Debug>() {}

/// A message type that is `Send` but not `Sync` nor `Debug`, as a user's may be.
struct Unshared(std::marker::PhantomData<std::cell::Cell<u8>>);

#[test]
fn shared_types_are_send_and_sync() {
    send_sync::<SessionSupervisor>();
    send_sync::<SessionSupervisor<Unshared>>();
    send_sync::<SessionHandle>();
    send_sync::<SessionHandle<Unshared>>();
    send_sync::<SupervisorBuilder<Unshared>>();
    send_sync::<SessionRegistry>();
    send_sync::<Session>();
    send_sync::<SessionId>();
    send_sync::<Error>();
    send_sync::<SendError<String>>();
    send_sync::<ReplyTo<String>>();
    send_sync::<ExitReport>();
    send_sync::<ShutdownReport>();
    send_sync::<SessionEvent>();
    send_sync::<Subscription>();
    send_sync::<RestartPolicy>();
    send_sync::<SessionStats>();
    send_sync::<SessionState>();
    send_sync::<Snapshot>();
    send_sync::<AdmissionPolicy>();
}

#[test]
fn public_types_are_debug_whatever_the_message_type() {
    debug::<SessionSupervisor<Unshared>>();
    debug::<SessionHandle<Unshared>>();
    debug::<SupervisorBuilder<Unshared>>();
    debug::<SendError<Unshared>>();
    debug::<ReplyTo<Unshared>>();
    debug::<session_supervisor::SessionContext<Unshared>>();
    debug::<SessionRegistry>();
    debug::<Session>();
    debug::<SessionKey>();
    debug::<ExitReason>();
    debug::<Restart>();
    debug::<Subscription>();
    debug::<session_supervisor::SessionBuilder>();
    debug::<SessionStats>();
    debug::<SessionState>();
    debug::<Snapshot>();
    debug::<AdmissionPolicy>();
}

#[test]
fn error_is_a_std_error_that_can_be_boxed() {
    let err: Box<dyn std::error::Error + Send + Sync> = Box::new(Error::ShuttingDown);
    assert_eq!(
        err.to_string(),
        "the supervisor is shutting down: no new sessions"
    );
}
