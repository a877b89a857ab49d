//! The `tracing` feature: a body's own events are attributed to its session's span.
//!
//! Alone in its file: it installs a process-wide `tracing` subscriber, which session
//! threads (unlike a thread-local default) see.
#![cfg(feature = "tracing")]

mod common;

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use common::{guard, recv_within, Projects};
use parking_lot::Mutex;
use session_supervisor::crossbeam_channel::unbounded;
use session_supervisor::SessionId;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// Records the fields of every span, and each event with the fields of the spans it
/// happened in.
#[derive(Default)]
struct Recorder {
    next: AtomicU64,
    spans: Mutex<HashMap<u64, Fields>>,
    events: Mutex<Vec<(Fields, Fields)>>,
}

type Fields = HashMap<String, String>;

thread_local! {
    /// The spans this thread is in, innermost last.
    static ENTERED: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
}

struct Collect<'a>(&'a mut Fields);

impl Visit for Collect<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

/// The subscriber installed: the test keeps another reference to the recorder.
struct Installed(Arc<Recorder>);

impl Subscriber for Installed {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let id = self.0.next.fetch_add(1, Ordering::Relaxed) + 1;
        let mut fields = Fields::new();
        span.record(&mut Collect(&mut fields));
        self.0.spans.lock().insert(id, fields);
        Id::from_u64(id)
    }

    fn record(&self, span: &Id, values: &Record<'_>) {
        if let Some(fields) = self.0.spans.lock().get_mut(&span.into_u64()) {
            values.record(&mut Collect(fields));
        }
    }

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut fields = Fields::new();
        event.record(&mut Collect(&mut fields));
        let spans = self.0.spans.lock();
        let mut context = Fields::new();
        ENTERED.with(|entered| {
            for span in entered.borrow().iter() {
                context.extend(spans[span].clone());
            }
        });
        self.0.events.lock().push((context, fields));
    }

    fn enter(&self, span: &Id) {
        ENTERED.with(|entered| entered.borrow_mut().push(span.into_u64()));
    }

    fn exit(&self, span: &Id) {
        ENTERED.with(|entered| {
            let mut entered = entered.borrow_mut();
            if let Some(at) = entered.iter().rposition(|s| *s == span.into_u64()) {
                entered.remove(at);
            }
        });
    }
}

/// The events whose message is `message`, with the fields of their spans.
fn events_saying(recorder: &Recorder, message: &str) -> Vec<Fields> {
    let events = recorder.events.lock();
    let saying = events
        .iter()
        .filter(|(_, fields)| fields.get("message").map(String::as_str) == Some(message));
    saying.map(|(context, _)| context.clone()).collect()
}

#[test]
fn a_bodys_events_are_attributed_to_its_own_sessions_span() {
    guard!(|| {
        let recorder = Arc::new(Recorder::default());
        tracing::subscriber::set_global_default(Installed(Arc::clone(&recorder)))
            .expect("the only one");
        let projects = Projects::new(2);
        let sup = common::supervisor();
        let (said_tx, said) = unbounded::<SessionId>();
        let handles: Vec<_> = (0..2)
            .map(|i| {
                let said_tx = said_tx.clone();
                let session = projects.session(i);
                sup.start(session)
                    .init(|ctx| {
                        ctx.spawn_child("helper", |ctx| {
                            tracing::info!("child at work");
                            ctx.wait_for_stop();
                        })?;
                        Ok(())
                    })
                    .run(move |ctx| {
                        tracing::info!("body at work");
                        said_tx.send(ctx.id()).unwrap();
                        ctx.wait_for_stop();
                    })
                    .unwrap()
            })
            .collect();
        for _ in 0..2 {
            recv_within(&said, "each body's event");
        }
        let sessions: Vec<_> = handles.iter().map(|h| h.session()).collect();
        for handle in &handles {
            handle.stop().unwrap();
        }

        let bodies = events_saying(&recorder, "body at work");
        assert_eq!(bodies.len(), 2, "{bodies:?}");
        for session in &sessions {
            let id = session.id().to_string();
            let own: Vec<_> = bodies.iter().filter(|c| c.get("id") == Some(&id)).collect();
            assert_eq!(own.len(), 1, "one event in the span of {id}: {bodies:?}");
            let span = own[0];
            assert_eq!(span.get("name").map(String::as_str), Some(session.name()));
            let path = session.project_path().display().to_string();
            assert_eq!(span.get("path"), Some(&path));
        }
        let children = events_saying(&recorder, "child at work");
        assert_eq!(children.len(), 2, "{children:?}");
        for session in &sessions {
            let id = session.id().to_string();
            let own: Vec<_> = children
                .iter()
                .filter(|c| c.get("id") == Some(&id))
                .collect();
            assert_eq!(own.len(), 1, "the child of {id}: {children:?}");
            assert_eq!(own[0].get("child").map(String::as_str), Some("helper"));
        }
    });
}
