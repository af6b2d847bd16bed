#[path = "e2e/lifecycle.rs"]
mod lifecycle;
#[path = "e2e/support.rs"]
mod support;
