//! Panic boundaries around user code that runs on a session thread outside the body's
//! `init` and `run`: drops (of the body, of queued messages, of panic payloads and
//! errors), error formatting and logging.
//!
//! A panic that escaped any of these would skip the cleanup that follows it, so each
//! one is caught here and turned into a message or ignored.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Runs `f`; a panic in it becomes the panic's message.
pub(crate) fn catch<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(panic_message)
}

/// Runs `f` and ignores a panic in it: for work whose failure changes nothing that
/// follows (a log line, a drop).
pub(crate) fn quietly(f: impl FnOnce()) {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(f)) {
        drop_quietly(payload);
    }
}

/// Drops `value`, whose `Drop` may be user code that panics.
pub(crate) fn drop_quietly<T>(value: T) {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(move || drop(value))) {
        // The payload's own Drop may panic as well. A payload of that panic is leaked
        // rather than dropped, so this ends.
        if let Err(inner) = catch_unwind(AssertUnwindSafe(move || drop(payload))) {
            std::mem::forget(inner);
        }
    }
}

/// The message of a panic payload (a `&str` or `String`, else a fixed text); the payload
/// is dropped inside a panic boundary.
pub(crate) fn panic_message(payload: Box<dyn Any + Send>) -> String {
    let message = if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "non-string panic payload".to_owned()
    };
    drop_quietly(payload);
    message
}

/// `value.to_string()`, or a text saying its `Display` panicked; `value` is dropped
/// inside a panic boundary.
pub(crate) fn describe<T: std::fmt::Display>(value: T) -> String {
    let text = catch(|| value.to_string())
        .unwrap_or_else(|message| format!("(formatting the error panicked: {message})"));
    drop_quietly(value);
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt;

    /// Panics when dropped, with a payload that panics when dropped, and so on.
    struct Bomb;

    impl Drop for Bomb {
        fn drop(&mut self) {
            std::panic::panic_any(Bomb);
        }
    }

    struct BadDisplay;

    impl fmt::Display for BadDisplay {
        fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
            panic!("display exploded")
        }
    }

    #[test]
    fn panic_message_reads_str_and_string_payloads() {
        let from_str = catch_unwind(|| panic!("plain")).unwrap_err();
        assert_eq!(panic_message(from_str), "plain");
        let from_string = catch_unwind(|| panic!("n = {}", 7)).unwrap_err();
        assert_eq!(panic_message(from_string), "n = 7");
        let other = catch_unwind(|| std::panic::panic_any(7_u8)).unwrap_err();
        assert_eq!(panic_message(other), "non-string panic payload");
    }

    #[test]
    fn a_value_whose_drop_panics_again_and_again_is_dropped_without_a_panic() {
        drop_quietly(Bomb);
        let payload = catch_unwind(|| std::panic::panic_any(Bomb)).unwrap_err();
        assert_eq!(panic_message(payload), "non-string panic payload");
    }

    #[test]
    fn a_display_that_panics_is_described_by_its_panic() {
        assert_eq!(
            describe(BadDisplay),
            "(formatting the error panicked: display exploded)"
        );
        assert_eq!(describe("fine"), "fine");
    }

    #[test]
    fn catch_and_quietly_contain_panics() {
        assert_eq!(catch(|| 5), Ok(5));
        assert_eq!(catch(|| -> u8 { panic!("no") }), Err("no".to_owned()));
        quietly(|| panic!("ignored"));
    }
}
