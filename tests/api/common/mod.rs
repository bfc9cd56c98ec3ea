//! Test harness: the real router, the real SQLite store, and *fake* engines (named so) whose
//! behaviour is driven by the pixels of tiny synthetic images (see `fakes`). Requests go through
//! methods on `TestApp` (see `requests`), which all answer with one `Reply`.

mod app;
mod fakes;
mod requests;

pub use app::*;
pub use fakes::*;
pub use requests::*;
