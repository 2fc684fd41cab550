//! Calling a student's function so that a panic becomes a message instead of ending the cell.

use std::cell::RefCell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Mutex;

thread_local! {
    /// Message and location of the last panic on this thread inside [`call`].
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Serialises swapping the process-wide panic hook.
static HOOK: Mutex<()> = Mutex::new(());

/// Runs `f`; a panic inside it is caught, its default output (the panic message on stderr) is
/// silenced, and it comes back as `Err` with a message for the student: `todo!()` is reported as
/// "not implemented yet", anything else with its message and source location.
pub fn call<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    let result = {
        let _lock = HOOK.lock().unwrap_or_else(|p| p.into_inner());
        let previous = panic::take_hook();
        panic::set_hook(Box::new(|info| {
            let message = match (
                info.payload().downcast_ref::<&str>(),
                info.payload().downcast_ref::<String>(),
            ) {
                (Some(s), _) => (*s).to_string(),
                (_, Some(s)) => s.clone(),
                _ => "a panic without a message".to_string(),
            };
            let at = info
                .location()
                .map(|l| format!(" (at line {}, column {})", l.line(), l.column()))
                .unwrap_or_default();
            LAST_PANIC.with(|p| *p.borrow_mut() = Some(format!("{message}{at}")));
        }));
        let result = panic::catch_unwind(AssertUnwindSafe(f));
        panic::set_hook(previous);
        result
    };
    result.map_err(|_| {
        let message = LAST_PANIC
            .with(|p| p.borrow_mut().take())
            .unwrap_or_else(|| "a panic".to_string());
        if message.starts_with("not yet implemented") {
            "not implemented yet: the function still reaches `todo!()`".to_string()
        } else if message.starts_with("not implemented") {
            format!("not implemented yet: {message}")
        } else {
            format!("your function panicked: {message}")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::call;

    #[test]
    fn a_value_comes_back_unchanged() {
        assert_eq!(call(|| 41 + 1), Ok(42));
    }

    #[test]
    fn todo_is_reported_as_not_implemented() {
        let r: Result<i32, String> = call(|| todo!());
        assert!(r.unwrap_err().starts_with("not implemented yet"));
    }

    #[test]
    fn a_panic_message_and_its_line_are_reported() {
        let r: Result<(), String> = call(|| panic!("index out of bounds"));
        let e = r.unwrap_err();
        assert!(
            e.contains("index out of bounds") && e.contains("line"),
            "{e}"
        );
    }
}
